"""Finding and stacking DICOM series: order from positions, failures named by folder."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from radsynth.errors import GeometryMismatch, UnreadableImage
from radsynth.io import find_dicom_series, read_dicom_series, read_image, write_dicom

from .io_helpers import SINGLE, TRIO_SERIES, require


def _copy(files: list[Path], folder: Path) -> Path:
    folder.mkdir()
    for f in files:
        shutil.copy(f, folder / f.name)
    return folder


def test_series_matches_simpleitk(trio_files: list[Path]) -> None:
    """GDCM's position sorting (through SimpleITK) is the independent reference."""
    image = read_dicom_series(TRIO_SERIES)
    assert image.array.shape == (36, 64, 64) and image.modality == "MR"
    names = sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(TRIO_SERIES))
    reference = sitk.ReadImage(names)
    np.testing.assert_array_equal(image.array, sitk.GetArrayFromImage(reference))
    np.testing.assert_allclose(image.spacing, reference.GetSpacing(), atol=1e-4)
    np.testing.assert_allclose(image.origin, reference.GetOrigin(), atol=1e-4)
    np.testing.assert_allclose(image.direction.ravel(), reference.GetDirection(), atol=1e-5)
    assert image.spacing[2] == pytest.approx(3.6, abs=1e-3)  # from positions, not thickness (3 mm)
    assert image.metadata["n_files"] == 36


def test_shuffled_files_give_the_same_volume(trio_files: list[Path]) -> None:
    shuffled = trio_files[:]
    random.Random(0).shuffle(shuffled)
    assert shuffled != trio_files
    a, b = read_dicom_series(trio_files), read_dicom_series(shuffled)
    np.testing.assert_array_equal(a.array, b.array)
    assert a.same_geometry(b, atol=1e-9)


def test_renamed_files_are_still_sorted_by_position(trio_files: list[Path], tmp_path: Path) -> None:
    folder = tmp_path / "renamed"
    folder.mkdir()
    for i, f in enumerate(reversed(trio_files)):
        shutil.copy(f, folder / f"{i:03d}_{f.name}")
    np.testing.assert_array_equal(read_image(folder).array, read_dicom_series(trio_files).array)


def test_missing_middle_slice_raises(trio_files: list[Path], tmp_path: Path) -> None:
    folder = _copy(trio_files[:17] + trio_files[18:], tmp_path / "gap")
    with pytest.raises(GeometryMismatch, match="missing slice") as caught:
        read_dicom_series(folder)
    assert str(caught.value).startswith(f"{folder}: ")


def test_slice_with_other_orientation_raises(trio_files: list[Path], tmp_path: Path) -> None:
    folder = _copy(trio_files, tmp_path / "tilted")
    ds = pydicom.dcmread(folder / trio_files[20].name)
    ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]  # sagittal instead of axial
    ds.save_as(folder / trio_files[20].name)
    with pytest.raises(GeometryMismatch, match="mixed orientations") as caught:
        read_dicom_series(folder)
    assert str(folder) in str(caught.value) and trio_files[20].name in str(caught.value)


def test_mixed_series_and_shapes_raise(trio_files: list[Path], tmp_path: Path) -> None:
    folder = _copy(trio_files, tmp_path / "mixed")
    shutil.copy(require(SINGLE / "MR_small.dcm"), folder / "other.dcm")
    index = find_dicom_series(folder)
    assert sorted(len(files) for files in index.values()) == [1, 36]
    with pytest.raises(GeometryMismatch, match="mixed series") as caught:
        read_dicom_series(folder)
    assert str(caught.value).startswith(f"{folder}: ")
    # A file claiming the same series but with another matrix size.
    ds = pydicom.dcmread(folder / "other.dcm")
    ds.SeriesInstanceUID = pydicom.dcmread(trio_files[0]).SeriesInstanceUID
    ds.Rows, ds.Columns = 32, 128
    ds.save_as(folder / "other.dcm")
    with pytest.raises(GeometryMismatch, match="mixed shapes"):
        read_dicom_series(folder)


def test_find_dicom_series_groups_recursively_and_reports_skipped(
    trio_files: list[Path], tmp_path: Path
) -> None:
    root = tmp_path / "study"
    _copy(trio_files[:10], root)
    _copy(trio_files[10:], root / "more")
    (root / "more" / "notes.txt").write_text("not DICOM")
    shutil.copy(pydicom.data.get_testdata_file("DICOMDIR"), root / "DICOMDIR")
    index = find_dicom_series(root)
    assert list(index) == [str(pydicom.dcmread(trio_files[0]).SeriesInstanceUID)]
    assert len(next(iter(index.values()))) == 36
    assert set(index.skipped) == {root / "more" / "notes.txt", root / "DICOMDIR"}
    assert "not a DICOM file" in index.skipped[root / "more" / "notes.txt"]
    assert "no Pixel Data" in index.skipped[root / "DICOMDIR"]
    assert read_dicom_series(root).array.shape == (36, 64, 64)


def test_folder_without_images_raises(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("nothing")
    with pytest.raises(UnreadableImage, match="no DICOM image files"):
        read_dicom_series(tmp_path)


def test_oblique_series_round_trips_through_write_dicom(tmp_path: Path) -> None:
    image = read_dicom_series(require(TRIO_SERIES))
    out = write_dicom(image, tmp_path / "series")
    assert len(list(out.iterdir())) == 36
    back = read_image(out)
    np.testing.assert_array_equal(back.array, image.array)
    assert back.same_geometry(image, atol=1e-4)


def test_a_single_file_without_position_reads_as_a_one_slice_volume():
    from pydicom.data import get_testdata_file

    from radsynth.io import read_dicom, read_dicom_series

    path = get_testdata_file("JPEG2000.dcm")
    volume = read_dicom_series([path])
    plane = read_dicom(path)
    assert volume.array.shape == (1, *plane.array.shape)
    assert volume.spacing[:2] == plane.spacing and volume.spacing[2] == 1.0
    assert (volume.array[0] == plane.array).all()
