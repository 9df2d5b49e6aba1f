"""NIfTI: the RAS affine becomes LPS geometry exactly as SimpleITK reads it."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from radsynth.errors import InvalidInput, UnreadableImage
from radsynth.io import Image, read_dicom_series, read_image, read_nifti, write_nifti

from .io_helpers import CH2, ITK_DATA, TRIO_SERIES, require

VOLUMES = {"ch2": CH2, "KmeansTest_T1UCharRaw": ITK_DATA / "KmeansTest_T1UCharRaw.nii.gz"}


def assert_matches_simpleitk(image: Image, path: Path) -> None:
    reference = sitk.ReadImage(str(path))
    np.testing.assert_allclose(image.spacing, reference.GetSpacing(), atol=1e-5)
    np.testing.assert_allclose(image.origin, reference.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(image.direction.ravel(), reference.GetDirection(), atol=1e-5)
    np.testing.assert_array_equal(image.array, sitk.GetArrayFromImage(reference))


@pytest.mark.parametrize("name", sorted(VOLUMES))
def test_read_and_round_trip_agree_with_simpleitk(name: str, tmp_path: Path) -> None:
    path = require(VOLUMES[name])
    image = read_image(path)
    assert_matches_simpleitk(image, path)
    for suffix in (".nii", ".nii.gz"):
        out = write_nifti(image, tmp_path / f"copy{suffix}", description="radsynth test")
        back = read_nifti(out)
        assert back.array.dtype == image.array.dtype
        np.testing.assert_array_equal(back.array, image.array)
        assert back.same_geometry(image, atol=1e-5)
        assert back.metadata["descrip"] == "radsynth test"
        assert_matches_simpleitk(back, out)


def test_oblique_volume_round_trips(tmp_path: Path) -> None:
    """The oblique Trio MR series: a direction with every cosine non-zero."""
    image = read_dicom_series(require(TRIO_SERIES))
    out = write_nifti(image, tmp_path / "trio.nii.gz")
    assert_matches_simpleitk(read_nifti(out), out)
    back = read_nifti(out)
    assert back.same_geometry(image, atol=1e-4)
    np.testing.assert_array_equal(back.array, image.array)


def test_nan_voxels_are_refused(tmp_path: Path) -> None:
    source = nib.load(require(ITK_DATA / "KmeansTest_T1UCharRaw.nii.gz"))
    data = np.asanyarray(source.dataobj).astype(np.float32)
    data[10, 20, 30:35] = np.nan
    data[0, 0, 0] = np.inf
    path = tmp_path / "nan.nii.gz"
    nib.save(nib.Nifti1Image(data, source.affine), path)
    with pytest.raises(UnreadableImage, match="contains 5 NaN voxels and 1 infinite voxels") as caught:
        read_image(path)
    assert str(caught.value).startswith(f"{path}: ")


def test_corrupt_and_four_dimensional_files(tmp_path: Path) -> None:
    data = require(CH2).read_bytes()
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableImage, match="cannot read NIfTI"):
        read_image(cut)
    source = nib.load(require(ITK_DATA / "KmeansTest_T1UCharRaw.nii.gz"))
    volume = np.asanyarray(source.dataobj)
    four_d = tmp_path / "4d.nii"
    nib.save(nib.Nifti1Image(np.stack([volume, volume], axis=-1), source.affine), four_d)
    with pytest.raises(UnreadableImage, match="one 3D volume expected"):
        read_image(four_d)


def test_rgb_and_wrong_extension_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        write_nifti(Image(np.zeros((2, 2, 3), np.uint8), rgb=True), tmp_path / "rgb.nii")
    with pytest.raises(InvalidInput):
        write_nifti(Image(np.zeros((2, 2), np.uint8)), tmp_path / "x.img")
