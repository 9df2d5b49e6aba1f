"""radsynth translate on real volumes: geometry kept exactly (NIfTI and DICOM series),
super-resolution keeps the field of view, MR -> CT writes HU with air outside the body,
every output is marked and logged, and bad input is one line with nothing written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from radsynth.cli import main
from radsynth.errors import InvalidInput
from radsynth.evaluate.translation import body_mask
from radsynth.io import Image, read_image, write_dicom, write_nifti
from radsynth.provenance import detect, read_marking
from radsynth.provenance.verify import verify_paths
from radsynth.translate import load_translator, translate_file, translate_volume


def _corners(image: Image) -> np.ndarray:
    """Physical positions (mm) of the outer pixel edges along x and y of the first slice."""
    n = np.array(image.spatial_shape[::-1], float)  # (x, y, z) counts
    spacing = np.array(image.spacing)
    edges = []
    for corner in ((-0.5, -0.5, 0), (n[0] - 0.5, n[1] - 0.5, 0)):
        edges.append(np.asarray(image.origin) + np.asarray(image.direction) @ (np.array(corner) * spacing))
    return np.array(edges)


@pytest.mark.parametrize("task", ["denoise", "t1pd"])
def test_nifti_geometry_is_kept_exactly(mr_volume, task, tmp_path, translators):
    source = write_nifti(mr_volume, tmp_path / "mr.nii.gz")
    out = translate_file(source, tmp_path / "out.nii.gz", task, weights=translators[task])
    result, given = read_image(out), read_image(source)
    assert result.same_geometry(given, atol=1e-5)
    assert read_marking(out)["task"] == "translate" and read_marking(out)["synthetic"]


def test_dicom_series_in_gives_a_dicom_series_out_on_the_same_grid(ct_volume, tmp_path, translators):
    series = write_dicom(ct_volume, tmp_path / "ct-series")
    out = translate_file(series, tmp_path / "denoised", "denoise", weights=translators["denoise"])
    result, given = read_image(out), read_image(series)
    assert result.same_geometry(given, atol=1e-3) and result.modality == "CT"
    assert np.abs(result.array - given.array).mean() < 60  # HU: a (barely trained) denoiser
    assert {v.verdict for v in verify_paths([out])} == {"synthetic-marked"}


def test_super_resolution_keeps_the_field_of_view_on_a_finer_grid(mr_volume, translators):
    model = load_translator("sr2", translators["sr2"])
    result = translate_volume(mr_volume, "sr2", model)
    assert result.spatial_shape == (6, 192, 160)
    assert np.allclose(result.spacing, (0.45, 0.55, 2.5))
    assert np.allclose(_corners(result), _corners(mr_volume), atol=1e-6)


def test_mr_to_ct_writes_hounsfield_units_with_air_outside_the_body(mr_volume, tmp_path, translators):
    source = write_nifti(mr_volume, tmp_path / "mr.nii.gz")
    out = translate_file(source, tmp_path / "ct.nii.gz", "mr2ct", weights=translators["mr2ct"])
    ct = read_image(out)
    mask = body_mask(mr_volume, "MR")
    assert ct.same_geometry(read_image(source), atol=1e-5)
    outside = ct.array[~mask]  # air, up to the watermark's chips (1-3 % of -1024..2000 HU)
    assert outside.min() >= -1000 and outside.max() <= -1000 + 0.03 * 3024
    assert ct.array.min() >= -1000 and ct.array.max() <= 1300
    assert detect(ct.array).found  # the pixel mark, not only the metadata
    assert json.loads((tmp_path / "ct.json").read_text())["model_id"] == "translate-mr2ct-tiny"


def test_cli_translates_and_refuses_bad_input_in_one_line(
    mr_volume, ct_volume, tmp_path, capsys, translators
):
    mr = write_nifti(mr_volume, tmp_path / "mr.nii.gz")
    ct = write_nifti(ct_volume, tmp_path / "ct.nii.gz")
    weights = ["--weights", translators["denoise"]]
    assert main(["translate", "--task", "denoise", str(mr), "-o", str(tmp_path / "a.nii.gz"), *weights]) == 0
    flat = write_nifti(Image(mr_volume.array[0], modality="MR"), tmp_path / "flat.nii.gz")
    nan = mr_volume.array.copy()
    nan[0, 0, 0] = np.nan
    broken = write_nifti(mr_volume.with_array(nan), tmp_path / "nan.nii.gz")
    empty = write_nifti(mr_volume.with_array(np.zeros_like(mr_volume.array)), tmp_path / "empty.nii.gz")
    cases = {
        "unknown task": ["--task", "colourise", str(mr)],
        "2D image": ["--task", "denoise", str(flat), *weights],
        "looks like CT": ["--task", "mr2ct", str(ct)],
        "NaN": ["--task", "denoise", str(broken), *weights],
        "mask is empty": [
            "--task",
            "mr2ct",
            str(mr),
            "--mask",
            str(empty),
            "--weights",
            translators["mr2ct"],
        ],
        "output exists": ["--task", "denoise", str(mr), "-o", str(tmp_path / "a.nii.gz"), *weights],
    }
    capsys.readouterr()
    for words, args in cases.items():
        if "-o" not in args:
            args = [*args, "-o", str(tmp_path / "never.nii.gz")]
        assert main(["translate", *args]) == 1, words
        err = capsys.readouterr().err
        assert words.split()[-1].lower() in err.lower() and err.count("\n") <= 2, (words, err)
    assert not (tmp_path / "never.nii.gz").exists() and not (tmp_path / "never.json").exists()


def test_evaluate_translation_cli_reports_every_case(mr_volume, tmp_path, capsys, translators):
    source = write_nifti(mr_volume, tmp_path / "mr.nii.gz")
    out = translate_file(source, tmp_path / "pd.nii.gz", "t1pd", weights=translators["t1pd"])
    figures = tmp_path / "figures.json"
    code = main(
        ["evaluate", "translation", str(out), str(source), "--source", str(source), "--json", str(figures)]
    )
    assert code == 0, capsys.readouterr().err
    result = json.loads(figures.read_text())
    assert set(result["overall"]) >= {"mae", "psnr", "ssim", "nmi", "edge_correlation"}


def test_a_wrong_mask_geometry_is_refused(mr_volume, tmp_path, translators):
    mr = write_nifti(mr_volume, tmp_path / "mr.nii.gz")
    mask = write_nifti(Image(np.ones((6, 96, 80), np.float32)), tmp_path / "mask.nii.gz")
    with pytest.raises(InvalidInput, match="geometry"):
        translate_file(mr, tmp_path / "out.nii.gz", "mr2ct", mask=mask, weights=translators["mr2ct"])
