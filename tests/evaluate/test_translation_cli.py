"""``radsynth evaluate translation`` with bone Dice and lesion figures, on real files of
../shared/data (atlas CT PNGs; a few BraTS FLAIR slices written as NIfTI): the table shows
the new columns, --json holds them, bad options are one line."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
from PIL import Image as PILImage
from scipy import ndimage

from radsynth.cli import main
from tests.data.conftest import SHARED_DATA

ATLAS_CT = SHARED_DATA / "harvard_aanlib_ct_mri" / "CT"
FLAIR = SHARED_DATA / "brain_mri_multicontrast" / "BraTS-GLI-00001-000" / "BraTS-GLI-00001-000-t2f.nii.gz"


@pytest.fixture(autouse=True)
def wide_table(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # rich would shorten the column names to fit 80


def _need(path):
    if not path.exists():
        pytest.skip(f"{path} not available: these tests read the real files in ../shared/data")
    return path


def _run(capsys, *args):
    code = main(["evaluate", "translation", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def _header(out: str) -> str:
    return next(line for line in out.splitlines() if "case" in line and "mae" in line)


def test_bone_threshold_adds_bone_dice(tmp_path, capsys):
    pred, ref = tmp_path / "pred", tmp_path / "ref"
    pred.mkdir()
    ref.mkdir()
    for name in ("2014.png", "33016.png"):
        shutil.copy(_need(ATLAS_CT / name), ref / name)
        shifted = np.roll(np.asarray(PILImage.open(ATLAS_CT / name)), 3, axis=1)
        PILImage.fromarray(shifted).save(pred / name)
    code, out, err = _run(capsys, pred, ref, "--bone-threshold", "230", "--json", tmp_path / "m.json")
    assert code == 0, err
    assert "bone_dice" in _header(out)
    result = json.loads((tmp_path / "m.json").read_text())
    assert all(0.5 < c["bone_dice"] < 0.95 for c in result["cases"].values()), result["cases"]
    assert set(result["overall"]["bone_dice"]) == {"value", "low", "high"}

    code, out, _ = _run(capsys, pred, ref, "--json", tmp_path / "plain.json")
    assert code == 0 and "bone_dice" not in _header(out)
    assert set(json.loads((tmp_path / "plain.json").read_text())["overall"]) == {"mae", "psnr", "ssim"}


def test_lesion_adds_contrast_and_dice(tmp_path, capsys):
    image = nib.load(_need(FLAIR)).slicer[:, :, 72:80]  # 8 axial slices through the tumour
    flair = np.asarray(image.dataobj, np.float32)
    blurred = ndimage.gaussian_filter(flair, (3, 3, 0))
    nib.save(nib.Nifti1Image(flair, image.affine), tmp_path / "flair.nii.gz")
    nib.save(nib.Nifti1Image(blurred, image.affine), tmp_path / "blurred.nii.gz")
    out_json = tmp_path / "m.json"
    args = (tmp_path / "blurred.nii.gz", tmp_path / "flair.nii.gz", "--lesion", "--data-range", "3119")
    code, out, err = _run(capsys, *args, "--json", out_json)
    assert code == 0, err
    header = _header(out)
    for column in ("contrast_ratio", "lesion_dice", "lesion_voxels", "lesion_contrast_prediction"):
        assert column in header, header
    result = json.loads(out_json.read_text())
    case = result["cases"]["blurred.nii.gz"]
    assert case["lesion_voxels"] > 5000 and 0.3 < case["contrast_ratio"] < 0.95, case
    assert result["data_range"] == 3119.0


def test_bad_options_are_one_line(tmp_path, capsys):
    ct = _need(ATLAS_CT / "2014.png")
    code, _, err = _run(capsys, ct, ct, "--data-range", "-1")
    assert code == 1 and len(err) == 1 and "data_range must be positive" in err[0], err
    flair = nib.load(_need(FLAIR)).slicer[:, :, 76:78]
    nib.save(flair, tmp_path / "volume.nii.gz")
    code, _, err = _run(capsys, ct, tmp_path / "volume.nii.gz", "--lesion")
    assert code == 1 and len(err) == 1 and "shape" in err[0], err
