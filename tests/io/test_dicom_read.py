"""Reading single DICOM files: rescale, MONOCHROME1, colour, multi-frame geometry, failures."""

from __future__ import annotations

import gzip
import json
import shutil
import warnings
from pathlib import Path

import nibabel
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.pixels import apply_modality_lut

from radsynth.errors import UnreadableImage
from radsynth.io import read_dicom, read_image

from .io_helpers import SINGLE, require

PHILIPS_MPRAGE = Path(nibabel.__file__).parent / "nicom/tests/data/philips_mprage.dcm.gz"


def test_ct_is_float32_hu_with_metadata() -> None:
    path = require(SINGLE / "CT_small.dcm")
    image = read_dicom(path)
    ds = pydicom.dcmread(path)
    assert image.array.dtype == np.float32 and image.units == "HU" and image.modality == "CT"
    np.testing.assert_array_equal(image.array, apply_modality_lut(ds.pixel_array, ds))
    assert image.spacing == (float(ds.PixelSpacing[1]), float(ds.PixelSpacing[0]))
    assert image.metadata["SeriesInstanceUID"] == ds.SeriesInstanceUID
    assert image.metadata["ImagePositionPatient"] == [float(v) for v in ds.ImagePositionPatient]
    assert "WindowCenter" in image.metadata or "WindowCenter" not in ds
    json.dumps(image.metadata)


def test_monochrome1_is_inverted() -> None:
    """CR stored white-is-low: after reading, bright means dense as in MONOCHROME2."""
    path = Path(get_testdata_file("6154"))
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"
    image = read_dicom(path)
    pivot = image.metadata["monochrome1_inverted_about"]
    expected = pivot - apply_modality_lut(ds.pixel_array, ds)
    np.testing.assert_allclose(image.array, expected, rtol=1e-6)
    assert image.metadata["geometry_assumed"]["pixel_spacing"].startswith("from ImagerPixelSpacing")


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("SC_rgb_dcmtk_+eb+cy+np.dcm", (100, 100, 3)),  # YBR_FULL_422 JPEG baseline
        ("SC_ybr_full_422_uncompressed.dcm", (100, 100, 3)),
        ("examples_palette.dcm", (350, 800, 3)),  # PALETTE COLOR -> RGB
    ],
)
def test_colour_becomes_rgb(name: str, shape: tuple[int, ...]) -> None:
    image = read_dicom(get_testdata_file(name))
    assert image.rgb and image.array.shape == shape
    reference = read_dicom(get_testdata_file("SC_rgb_dcmtk_+eb+cr.dcm"))  # same picture, RGB
    if shape == reference.array.shape:
        assert np.abs(image.array.astype(int) - reference.array.astype(int)).mean() < 4


def test_jpeg2000_cr_decodes_losslessly() -> None:
    """RG3_J2KR: JPEG 2000 lossless CR; two independent decoders must agree exactly."""
    path = require(SINGLE / "RG3_J2KR.dcm")
    image = read_dicom(path)
    assert image.array.shape == (1760, 1760) and image.modality == "CR"
    assert image.array.dtype == np.uint16 and 0 < image.array.max() < 2**10
    ds = pydicom.dcmread(path)
    assert ds.PhotometricInterpretation == "MONOCHROME1"  # so read_dicom inverts
    ds.pixel_array_options(decoding_plugin="gdcm")
    pivot = image.metadata["monochrome1_inverted_about"]
    np.testing.assert_array_equal(image.array, pivot - ds.pixel_array.astype(np.int64))


def test_enhanced_mr_without_functional_groups_records_assumptions() -> None:
    """emri_small: 10 frames, no per-frame geometry; only Spacing Between Slices is known."""
    path = require(SINGLE / "emri_small.dcm")
    image = read_dicom(path)
    assert image.array.shape == (10, 64, 64) and image.modality == "MR"
    np.testing.assert_array_equal(image.array, pydicom.dcmread(path).pixel_array)
    assert image.spacing == (1.0, 1.0, 1.2)
    assert set(image.metadata["geometry_assumed"]) == {"pixel_spacing", "slice_positions", "orientation"}


def test_enhanced_mr_geometry_matches_nibabel(tmp_path: Path) -> None:
    """Philips enhanced MR (176 frames, per-frame functional groups, oblique sagittal).

    nibabel's DICOM wrapper is an independent reading of the same groups; its slice axis
    follows the stack order, ours the slice normal, so slice k is its slice 175 - k.
    """
    if not PHILIPS_MPRAGE.exists():
        pytest.skip(f"{PHILIPS_MPRAGE} not present (nibabel test data)")
    path = tmp_path / "mprage.dcm"
    path.write_bytes(gzip.decompress(PHILIPS_MPRAGE.read_bytes()))
    image = read_dicom(path)
    assert image.array.shape == (176, 256, 256) and "geometry_assumed" not in image.metadata
    np.testing.assert_allclose(image.spacing, (1.0, 1.0, 1.0), atol=1e-5)
    np.testing.assert_allclose(image.direction.T @ image.direction, np.eye(3), atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from nibabel.nicom import dicomwrappers

        theirs = dicomwrappers.wrapper_from_file(str(path)).affine  # (row, column, slice) -> LPS
    n = image.array.shape[0]
    for x, y, z in [(0, 0, 0), (255, 0, 0), (0, 255, 0), (10, 20, 175), (128, 64, 90)]:
        ours = image.affine @ [x, y, z, 1]
        np.testing.assert_allclose(ours, theirs @ [y, x, n - 1 - z, 1], atol=0.01)  # mm


def test_rt_dose_grid_is_a_volume_in_gray() -> None:
    image = read_dicom(get_testdata_file("rtdose.dcm"))
    ds = pydicom.dcmread(get_testdata_file("rtdose.dcm"))
    assert image.array.shape == (15, 10, 10) and image.array.dtype == np.float32
    assert image.spacing[2] == pytest.approx(5.0)  # Grid Frame Offset Vector steps
    np.testing.assert_allclose(image.array, ds.pixel_array * float(ds.DoseGridScaling), rtol=1e-6)


def test_truncated_file_raises(tmp_path: Path) -> None:
    data = require(SINGLE / "CT_small.dcm").read_bytes()
    for cut, problem in [(len(data) // 2, "less than expected"), (1500, "truncated"), (132, "truncated")]:
        path = tmp_path / f"cut{cut}.dcm"
        path.write_bytes(data[:cut])
        with pytest.raises(UnreadableImage, match=problem) as caught:
            read_dicom(path)
        assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_text_file_named_dcm_and_empty_file_raise(tmp_path: Path) -> None:
    readme = Path(get_testdata_file("README.txt"))
    fake = tmp_path / "notes.dcm"
    shutil.copy(readme, fake)
    with pytest.raises(UnreadableImage, match="not a DICOM file"):
        read_image(fake)
    empty = tmp_path / "empty.dcm"
    empty.write_bytes(b"")
    with pytest.raises(UnreadableImage, match="empty file"):
        read_dicom(empty)


def test_file_without_preamble_and_missing_file(tmp_path: Path) -> None:
    """A raw data set (no preamble, no meta) still reads; a missing path says so."""
    ds = pydicom.dcmread(require(SINGLE / "MR_small.dcm"))
    raw = tmp_path / "raw.dcm"
    pydicom.Dataset(ds).save_as(raw, implicit_vr=True, little_endian=True)  # no preamble, no meta
    assert raw.read_bytes()[128:132] != b"DICM"
    np.testing.assert_array_equal(read_dicom(raw).array, ds.pixel_array)
    with pytest.raises(UnreadableImage, match="no such file"):
        read_dicom(tmp_path / "missing.dcm")
