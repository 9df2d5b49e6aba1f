"""The web page end to end: real headless Chromium against a real server (``live_server``).

Generation runs the shipped model with few steps, so the whole module stays well under two
minutes on two CPU cores.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from PIL import Image
from playwright.sync_api import expect
from pydicom.data import get_testdata_file
from scipy import ndimage

pytestmark = pytest.mark.slow

PROMPT = "axial chest CT, lung window, tumour in the right lung"
JOB_TIMEOUT_MS = 90_000


def connect(tab, server) -> None:
    tab.goto(server.url + "/")
    tab.fill("#token", server.token)
    tab.click("#token-save")
    expect(tab.locator("#token-status")).to_have_attribute("data-connected", "true")
    # the model list arrives after /api/me (the first call imports the generators)
    expect(tab.locator("#model option").first).to_have_attribute("value", "0", timeout=JOB_TIMEOUT_MS)


def red_regions(png: Path, min_pixels: int = 40) -> list[tuple[slice, slice]]:
    """Bounding boxes of the connected saturated-red areas of a screenshot (the badges)."""
    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    red = (r > 170) & (g < 90) & (b < 90)
    labels, _ = ndimage.label(red)
    sizes = np.bincount(labels.ravel())
    boxes = ndimage.find_objects(labels)
    return [box for i, box in enumerate(boxes, start=1) if box is not None and sizes[i] >= min_pixels]


def test_generate_gallery_download_and_verify(live_server, page, screenshot, tmp_path):
    connect(page, live_server)
    page.get_by_role("button", name=PROMPT, exact=True).click()  # an example prompt fills the box
    expect(page.locator("#prompt")).to_have_value(PROMPT)
    page.fill("#n", "4")
    page.fill("#steps", "5")
    page.click("#generate-btn")
    expect(page.locator("#gen-progress")).to_be_visible()
    expect(page.locator("#gen-progress-text")).to_have_text("Done 4 of 4", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#gen-error")).to_be_hidden()

    figures = page.locator("#gallery figure.result")
    expect(figures).to_have_count(4)
    for i in range(4):
        figure = figures.nth(i)
        expect(figure.locator(".badge")).to_have_text("SYNTHETIC")
        expect(figure.locator(".badge")).to_be_visible()
        expect(figure.locator("img")).to_have_attribute("alt", f"Synthetic image {i + 1} of 4: {PROMPT}")
    page.wait_for_function(
        "[...document.querySelectorAll('#gallery img')].every(i => i.complete && i.naturalWidth === 64)"
    )
    shown = page.eval_on_selector(
        "#gallery img",
        "i => ({src: i.src, rendering: getComputedStyle(i).imageRendering, width: i.width})",
    )
    assert shown["src"].startswith("blob:")  # fetched with the token, not linked
    assert shown["rendering"] == "pixelated"
    assert shown["width"] >= 3 * 64  # upscaled, each image pixel a visible block

    # the screenshot shows four red badges, each inside its own image, over non-blank pixels
    shot = screenshot(page.locator("#gallery"), "gallery")
    regions = red_regions(shot)
    assert len(regions) == 4, f"{len(regions)} red badge regions in {shot}"
    frames = [figures.nth(i).locator(".frame").bounding_box() for i in range(4)]
    gallery_box = page.locator("#gallery").bounding_box()
    pixels = np.asarray(Image.open(shot).convert("L")).astype(float)
    for frame in frames:
        x0, y0 = round(frame["x"] - gallery_box["x"]), round(frame["y"] - gallery_box["y"])
        inside = [
            box
            for box in regions
            if x0 <= box[1].start < x0 + frame["width"] and y0 <= box[0].start < y0 + 60
        ]
        assert len(inside) == 1, "one badge at the top of each image"
        image = pixels[y0 + 40 : y0 + round(frame["height"]), x0 : x0 + round(frame["width"])]
        assert image.std() > 5, "the image under the badge is not blank"
    screenshot(page, "generate-page", full_page=True)

    # downloads go through fetch + blob: the DICOM is marked synthetic
    first = figures.nth(0)
    with page.expect_download() as info:
        first.locator("a.dl", has_text="DICOM").click()
    dicom_path = tmp_path / info.value.suggested_filename
    info.value.save_as(dicom_path)
    assert dicom_path.suffix == ".dcm"
    ds = pydicom.dcmread(dicom_path)
    assert ds.ConversionType == "SYN"
    with page.expect_download() as info:
        first.locator("a.dl", has_text="PNG").click()
    png_path = tmp_path / info.value.suggested_filename
    info.value.save_as(png_path)
    assert Image.open(png_path).size == (64, 64)

    # verify: the generated PNG is synthetic, a real CT slice has no evidence
    real = tmp_path / "CT_small.dcm"
    shutil.copyfile(get_testdata_file("CT_small.dcm"), real)
    page.set_input_files("#verify-files", [str(png_path), str(real)])
    # marks and watermark only: the demo detector scores CT_small.dcm P(synthetic) = 0.95 (a
    # false positive of the 64-px demo detector on a 128-px CT, not the page's business)
    page.uncheck("#detector")
    page.click("#verify-btn")
    rows = page.locator("#verdicts tbody tr")
    expect(rows).to_have_count(2, timeout=JOB_TIMEOUT_MS)
    synthetic = rows.filter(has_text=png_path.name)
    expect(synthetic).to_have_attribute("data-synthetic", "true")
    expect(synthetic.locator(".verdict")).to_have_text("Synthetic: marked")
    genuine = rows.filter(has_text="CT_small.dcm")
    expect(genuine).to_have_attribute("data-verdict", "no-evidence")
    expect(genuine.locator(".verdict")).to_have_text("No evidence")
    expect(page.locator("#verify-error")).to_be_hidden()
    screenshot(page.locator("#verify"), "verify")
    screenshot(page, "whole-page", full_page=True)


def test_bad_token_shows_the_api_error_inline(live_server, page, screenshot):
    page.goto(live_server.url + "/")
    page.fill("#token", "not-a-real-token")
    page.click("#token-save")
    error = page.locator("#token-error")
    expect(error).to_be_visible()
    detail = httpx.get(
        live_server.url + "/api/me", headers={"Authorization": "Bearer not-a-real-token"}
    ).json()
    assert error.text_content() == detail["detail"]
    assert "\n" not in error.text_content()
    expect(page.locator("#token-status")).to_have_text("Not connected")
    # generating without a working token says so in the panel, on one line
    page.fill("#prompt", PROMPT)
    page.click("#generate-btn")
    expect(page.locator("#gen-error")).to_be_visible()
    screenshot(page, "bad-token")


def test_cancel_stops_a_generation(live_server, page):
    connect(page, live_server)
    page.fill("#prompt", "axial T1-weighted brain MR, no lesion visible")
    page.fill("#n", "16")
    page.fill("#steps", "5")  # 4 chunks of 4 images: the job stops at its next report, after the first
    page.click("#generate-btn")
    cancel = page.locator("#gen-cancel")
    expect(cancel).to_be_visible()
    expect(page.locator("#generate-btn")).to_be_disabled()
    cancel.click()
    expect(page.locator("#gen-progress-text")).to_have_text("Cancelled", timeout=JOB_TIMEOUT_MS)
    expect(cancel).to_be_hidden()
    expect(page.locator("#generate-btn")).to_be_enabled()
    expect(page.locator("#gallery figure")).to_have_count(0)
    expect(page.locator("#gen-error")).to_be_hidden()


def test_translate_shows_before_and_after(live_server, page, screenshot, tmp_path):
    nib = pytest.importorskip("nibabel")
    from nibabel.testing import data_path

    # a real (small) T1 head volume from nibabel's test data, 33 x 41 x 25 at 2 mm
    source = nib.load(Path(data_path) / "anatomical.nii")
    volume = tmp_path / "anatomical.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(source.dataobj), source.affine, source.header), volume)

    connect(page, live_server)
    page.reload()  # the token is kept (localStorage) and checked again
    expect(page.locator("#token-status")).to_have_attribute("data-connected", "true")
    page.set_input_files("#translate-file", str(volume))
    page.select_option("#task", "denoise")
    page.click("#translate-btn")
    expect(page.locator("#tr-progress-text")).to_have_text(re.compile(r"^Done"), timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#tr-error")).to_be_hidden()
    preview = page.locator("#translate-result img.preview")
    expect(preview).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('#translate-result img');"
        " return i && i.complete && i.naturalWidth > 0; }"
    )
    expect(page.locator("#translate-result .halves")).to_contain_text("Before")
    expect(page.locator("#translate-result .halves")).to_contain_text("After")

    link = page.locator("#translate-result a.dl", has_text=".nii.gz")
    with page.expect_download() as info:
        link.click()
    out = tmp_path / info.value.suggested_filename
    info.value.save_as(out)
    translated = nib.load(out)
    assert translated.shape == source.shape
    np.testing.assert_allclose(translated.affine, source.affine, atol=1e-4)
    screenshot(page.locator("#translate"), "translate")

    # the job is listed under recent jobs; after a reload, Show brings its result back
    job_id = page.locator("#translate-result").get_attribute("data-job")
    row = page.locator(f"#jobs-table tr[data-job='{job_id}']")
    expect(row).to_have_attribute("data-state", "done")
    expect(row).to_contain_text("denoise of anatomical.nii.gz")
    page.reload()
    expect(page.locator("#translate-result img.preview")).to_have_count(0)
    row.get_by_role("button", name=re.compile("^Show")).click()
    expect(page.locator("#translate-result img.preview")).to_be_visible()
    expect(page.locator("#translate-result")).to_have_attribute("data-job", job_id)
    screenshot(page.locator("#jobs"), "recent-jobs")
