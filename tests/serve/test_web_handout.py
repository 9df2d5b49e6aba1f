"""The web page's education handout end to end: real headless Chromium against a real server
(``live_server``). The example report has one drawable finding; one image at 5 steps keeps the
module well under a minute on two CPU cores.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from .test_web import JOB_TIMEOUT_MS, connect, red_regions

pytestmark = pytest.mark.slow

EXAMPLE = "CT chest: right upper lobe mass"
REPORT = (
    "CT CHEST WITH CONTRAST. FINDINGS: 2.3 x 1.9 cm spiculated mass in the right upper lobe. "
    "No pleural effusion. IMPRESSION: Right upper lobe mass, suspicious for malignancy."
)
PICTURED = 1  # the mass; "No pleural effusion" is negated, and the impression repeats the mass


def test_handout_preview_and_pdf(live_server, page, screenshot, tmp_path):
    connect(page, live_server)
    page.get_by_role("button", name=EXAMPLE, exact=True).click()  # the example fills the report
    expect(page.locator("#report")).to_have_value(REPORT)
    page.fill("#ho-n", "1")
    page.fill("#ho-steps", "5")
    page.click("#handout-btn")
    expect(page.locator("#ho-progress")).to_be_visible()
    expect(page.locator("#ho-progress-text")).to_have_text(
        f"Done {PICTURED} of {PICTURED}", timeout=JOB_TIMEOUT_MS
    )
    expect(page.locator("#ho-error")).to_be_hidden()

    result = page.locator("#handout-result")
    job_id = result.get_attribute("data-job")
    expect(result).to_have_attribute("data-loaded", job_id)
    frame = result.locator("iframe")
    expect(frame).to_have_attribute("sandbox", "")  # no scripts, an opaque origin
    assert frame.get_attribute("src").startswith("blob:")  # fetched with the token, not linked

    # inside the handout: one SYNTHETIC label per picture, the plain-language caption beside it
    handout = page.frame_locator("#handout-result iframe")
    expect(handout.locator("h1")).to_have_text("Understanding your scan report")
    labels = handout.locator(".synthetic-label")
    expect(labels).to_have_count(PICTURED)
    for i in range(PICTURED):
        expect(labels.nth(i)).to_have_text("SYNTHETIC")
        expect(labels.nth(i)).to_be_visible()
    pictured = handout.locator("section.finding", has=handout.locator(".pictures"))
    expect(pictured).to_have_count(PICTURED)
    caption = pictured.first.locator(".caption p").first
    # plain words: "A computer-made picture, not your scan: a CT scan of the chest showing a lump ..."
    expect(caption).to_have_text(re.compile(r"^A computer-made picture, not your scan: .*\blump\b.*\blung\b"))
    expect(pictured.first.locator(".quote")).to_contain_text("spiculated mass in the right upper lobe")
    made_by = "Pictures made by the computer model ldm-demo-64."
    expect(pictured.first.locator(".made-by")).to_have_text(made_by)
    expect(handout.locator(".picture img")).to_have_attribute("alt", re.compile("^SYNTHETIC"))

    # the screenshot of the frame shows the handout: a red label at the top of each non-blank
    # picture and the white-on-black one written into its pixels at the foot, on a page of
    # text. The sandboxed frame paints on its own, a moment after it loads:
    # shoot again until it has.
    frame.scroll_into_view_if_needed()
    boxes = [handout.locator(".picture img").nth(i).bounding_box() for i in range(PICTURED)]
    frame_box = frame.bounding_box()
    for _ in range(20):
        shot = screenshot(frame, "handout-frame")
        pixels = np.asarray(Image.open(shot).convert("L")).astype(float)
        if (pixels < 128).mean() > 0.01:
            break
        page.wait_for_timeout(250)
    assert (pixels < 128).mean() > 0.01, f"the frame shows no text in {shot}"
    regions = red_regions(shot)
    for box in boxes:
        x0, y0 = round(box["x"] - frame_box["x"]), round(box["y"] - frame_box["y"])
        w, h = round(box["width"]), round(box["height"])
        labels_here = [
            r for r in regions if x0 <= r[1].start and r[1].stop <= x0 + w and y0 <= r[0].start < y0 + h / 2
        ]
        assert len(labels_here) == 1, f"one red SYNTHETIC label at the top of each picture in {shot}"
        middle = pixels[y0 + h // 4 : y0 + 3 * h // 4, x0 : x0 + w]
        assert middle.std() > 5, "the picture under its label is not blank"
        foot = pixels[y0 + h - h // 16 : y0 + h, x0 : x0 + w]
        assert np.median(foot) < 40 and foot.max() > 150, "SYNTHETIC in the picture's own pixels, at its foot"
    screenshot(page.locator("#handout"), "handout")

    # the PDF comes through fetch + blob as a download
    with page.expect_download() as info:
        result.get_by_role("link", name="Download the handout as PDF").click()
    pdf = tmp_path / info.value.suggested_filename
    info.value.save_as(pdf)
    assert pdf.suffix == ".pdf"
    assert pdf.read_bytes().startswith(b"%PDF")

    # after a reload, the recent job's Show brings the handout back
    page.reload()
    expect(page.locator("#handout-result iframe")).to_have_count(0)
    row = page.locator(f"#jobs-table tr[data-job='{job_id}']")
    expect(row).to_have_attribute("data-state", "done")
    expect(row).to_contain_text("1 per finding")
    row.get_by_role("button", name=re.compile("^Show")).click()
    expect(result).to_have_attribute("data-loaded", job_id)
    expect(page.frame_locator("#handout-result iframe").locator(".synthetic-label")).to_have_count(PICTURED)
    screenshot(page, "handout-page", full_page=True)


def test_handout_error_is_one_line(live_server, page):
    connect(page, live_server)
    page.fill("#report", "x" * 20_001)  # over the server's report limit: its detail, inline
    page.click("#handout-btn")
    error = page.locator("#ho-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("the limit is")
    assert "\n" not in error.text_content()
    expect(page.locator("#handout-result iframe")).to_have_count(0)


def test_failed_handout_and_evaluation_report(live_server, page, tmp_path):
    """A handout job that fails shows its error; a finished evaluation in recent jobs offers its
    report. Both jobs are stubbed at the network layer (the page's handling is what is tested)."""
    failed = {
        "id": "f" * 32,
        "kind": "handout",
        "state": "failed",
        "progress": {"done": 0, "total": 1},
        "params": {"report": REPORT, "n": 1, "seed": 0, "steps": 5},
        "error": "the model weights are unreadable",
        "created": "2026-01-02T10:00:00+00:00",
        "results": None,
    }
    report_url = "/api/jobs/" + "e" * 32 + "/files/out/report.html"
    evaluation = {
        "id": "e" * 32,
        "kind": "evaluate",
        "state": "done",
        "progress": {"done": 3, "total": 3},
        "params": {
            "real": "/data/real/manifest.csv",
            "synthetic": "/data/jobs/x/out/png",
            "train": "/data/train",
        },
        "error": None,
        "created": "2026-01-02T09:00:00+00:00",
        "results": {
            "files": [
                {"name": "report.html", "url": report_url},
                {"name": "metrics.json", "url": report_url.replace("report.html", "metrics.json")},
            ],
            "report": report_url,
        },
    }
    page.route(
        "**/api/handout",
        lambda route: route.fulfill(status=202, json={**failed, "state": "queued", "error": None}),
    )
    page.route(f"**/api/jobs/{failed['id']}", lambda route: route.fulfill(json=failed))
    page.route("**/api/jobs", lambda route: route.fulfill(json={"jobs": [failed, evaluation]}))
    page.route(
        "**" + report_url,
        lambda route: route.fulfill(
            body="<!doctype html><title>Evaluation</title>", content_type="text/html"
        ),
    )
    connect(page, live_server)
    page.get_by_role("button", name=EXAMPLE, exact=True).click()
    page.click("#handout-btn")
    expect(page.locator("#ho-progress-text")).to_have_text("Failed")
    error = page.locator("#ho-error")
    expect(error).to_have_text(failed["error"])
    expect(page.locator("#handout-btn")).to_be_enabled()
    expect(page.locator("#handout-result iframe")).to_have_count(0)

    row = page.locator(f"#jobs-table tr[data-job='{evaluation['id']}']")
    expect(row).to_contain_text("png against manifest.csv")
    row.get_by_role("button", name=re.compile("^Show")).click()
    with page.expect_download() as info:
        row.get_by_role("link", name="Download the evaluation report report.html").click()
    assert info.value.suggested_filename == "report.html"
    saved = tmp_path / "report.html"
    info.value.save_as(saved)
    assert "<title>Evaluation</title>" in saved.read_text()
    expect(row.get_by_role("link", name="Download metrics.json")).to_be_visible()
    # the failed handout is listed without an action
    expect(page.locator(f"#jobs-table tr[data-job='{failed['id']}'] button")).to_have_count(0)
