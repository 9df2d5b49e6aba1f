"""``radsynth generate`` for a chest X-ray family, as a user runs it: a DX DICOM with the
prompt's view, age and sex, a refusal in one line for what the model never learnt, and the
x2 super-resolution cascade behind ``--size``. The family is tiny but real (conftest
``tiny_cxr``: trained a few steps on real NIH chest X-rays), laid out as a shipped one."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest
from PIL import Image as PILImage

from radsynth.cli import main
from radsynth.provenance import find_output, read_marking
from tests.io.io_helpers import dciodvfy_errors

pytestmark = pytest.mark.slow  # trains a tiny VAE, LDM and super-resolution stage (~35 s niced)

PROMPT = "PA chest X-ray of a 60-year-old man, right lower lobe pneumonia"


def _run(capsys, *args):
    code = main(["generate", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_dicom_chest_xray_states_view_age_and_sex_and_is_marked(tiny_cxr, tmp_path, capsys):
    out = tmp_path / "dicom"
    code, _, err = _run(
        capsys, PROMPT, "--weights", tiny_cxr, "-n", 2, "--steps", 2, "--format", "dicom", "-o", out
    )
    assert code == 0, err
    files = sorted(out.glob("*.dcm"))
    assert len(files) == 2
    ds = pydicom.dcmread(files[0])
    assert (ds.Modality, ds.ViewPosition, ds.PatientAge, ds.PatientSex) == ("DX", "PA", "060Y", "M")
    assert ds.PhotometricInterpretation == "MONOCHROME2" and (ds.Rows, ds.Columns) == (16, 16)
    assert ds.ConversionType == "SYN" and ds.ContentQualification == "RESEARCH"
    assert str(ds.PatientName) == "SYNTHETIC^RADSYNTH" and "pneumonia" in ds.DerivationDescription
    assert read_marking(files[0])["synthetic"] is True
    assert dciodvfy_errors(files[0]) == []
    for record in json.loads((out / "generation.json").read_text())["files"]:
        assert find_output(record["output_id"]) is not None  # audit-logged like every output


def test_a_prompt_outside_the_family_is_one_line_naming_what_it_draws(tiny_cxr, tmp_path, capsys):
    code, _, err = _run(capsys, "axial brain MR", "--weights", tiny_cxr, "-n", 1, "-o", tmp_path / "mr")
    assert code != 0
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "X-ray (DX) images of the chest" in err and "MR images of the brain" in err
    assert not (tmp_path / "mr").exists()


def test_an_unseen_term_inside_the_family_warns_low_confidence(tiny_cxr, tmp_path, capsys):
    code, _, err = _run(
        capsys, PROMPT + ", giraffe", "--weights", tiny_cxr, "-n", 1, "--steps", 2, "-o", tmp_path
    )
    assert code == 0 and "low confidence" in err and "giraffe" in err
    assert json.loads((tmp_path / "generation.json").read_text())["low_confidence"] is True


def test_size_256_style_cascade_doubles_the_side_through_the_families_sr_stage(tiny_cxr, tmp_path, capsys):
    code, _, err = _run(
        capsys, PROMPT, "--weights", tiny_cxr, "-n", 2, "--steps", 2, "--size", 32, "-o", tmp_path
    )
    assert code == 0, err
    for path in sorted(tmp_path.glob("ldm_seed*.png")):
        with PILImage.open(path) as pic:
            assert pic.size == (32, 32)
    card = json.loads((tmp_path / "generation.json").read_text())
    assert card["size"] == [32, 32] and card["super_resolution"]


def test_a_size_the_family_cannot_draw_is_one_line_naming_those_it_can(tiny_cxr, tmp_path, capsys):
    code, _, err = _run(capsys, PROMPT, "--weights", tiny_cxr, "--size", 64, "-o", tmp_path / "x")
    assert code != 0 and len(err.strip().splitlines()) == 1
    assert "16 or 32 pixels" in err and not (tmp_path / "x").exists()


def test_the_cascade_keeps_image_i_the_same_at_any_batch_size(tiny_cxr):
    from radsynth.generate import load_pipeline

    two = load_pipeline(tiny_cxr, size=32, batch_size=2, precision="fp32").generate(
        PROMPT, n=2, seed=3, steps=2
    )
    one = load_pipeline(tiny_cxr, size=32, batch_size=1, precision="fp32").generate(
        PROMPT, n=1, seed=4, steps=2
    )
    assert two[1].array.shape == (32, 32)
    np.testing.assert_allclose(two[1].array, one[0].array, atol=1e-5)
    assert two[1].spacing == tuple(s / 2 for s in load_pipeline(tiny_cxr).spacing)


def test_the_shipped_family_draws_128_and_256_pixel_chest_xrays(tmp_path, capsys):
    """The shipped ``cxr-128`` (float16-stored LDM + x2 stage) as `make demo` runs it."""
    code, _, err = _run(capsys, PROMPT, "--weights", "cxr-128", "-n", 2, "--seed", 0, "-o", tmp_path / "a")
    assert code == 0, err
    small = [np.asarray(PILImage.open(p), float) for p in sorted((tmp_path / "a").glob("ldm_*.png"))]
    assert [a.shape for a in small] == [(128, 128)] * 2
    assert all(a.std() / a.max() > 0.1 for a in small)  # an image, not a flat field
    code, _, err = _run(
        capsys,
        PROMPT,
        "--weights",
        "cxr-128",
        "-n",
        1,
        "--size",
        256,
        "--format",
        "dicom",
        "-o",
        tmp_path / "b",
    )
    assert code == 0, err
    ds = pydicom.dcmread(next((tmp_path / "b").glob("*.dcm")))
    assert (ds.Rows, ds.Columns, ds.Modality, ds.PatientAge) == (256, 256, "DX", "060Y")
    assert "PixelSpacing" not in ds  # the corpus states none, so none is claimed
