"""Secondary Capture output: valid per dciodvfy, CT as int16 HU, attributes, geometry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from radsynth.errors import InvalidInput
from radsynth.io import Image, read_dicom, read_dicom_series, read_image, write_dicom

from .io_helpers import ITK_DATA, SINGLE, assert_same_values, dciodvfy_errors, require

MARKING = {
    "ConversionType": "SYN",
    "ImageType": ["DERIVED", "SECONDARY"],
    "ContentQualification": "RESEARCH",
    "DerivationDescription": "radsynth test output",
    "BurnedInAnnotation": "NO",
    "PatientIdentityRemoved": "YES",
    "DeidentificationMethod": "synthetic image: no real patient",
}


SAMPLES = {
    "CT": lambda: require(SINGLE / "CT_small.dcm"),
    "MR": lambda: require(SINGLE / "MR2_UNCI.dcm"),
    "RGB": lambda: Path(get_testdata_file("examples_rgb_color.dcm")),
    "palette": lambda: Path(get_testdata_file("examples_palette.dcm")),
    "MONOCHROME1 CR": lambda: Path(get_testdata_file("6154")),
    "DX": lambda: require(SINGLE / "dx_image.dcm"),
    "multi-frame -> series": lambda: require(SINGLE / "emri_small.dcm"),
    "RT dose -> series": lambda: Path(get_testdata_file("rtdose.dcm")),
}


@pytest.mark.parametrize("kind", sorted(SAMPLES))
def test_written_files_pass_dciodvfy(kind: str, tmp_path: Path) -> None:
    image = read_dicom(SAMPLES[kind]())
    out = write_dicom(image, tmp_path / ("out.dcm" if image.spatial_ndim == 2 else "out"))
    files = [out] if out.is_file() else sorted(out.iterdir())
    for path in {files[0], files[-1]}:
        assert dciodvfy_errors(path) == [], path


def test_marking_attributes_and_patient_study_info(tmp_path: Path) -> None:
    image = read_dicom(require(SINGLE / "CT_small.dcm"))
    out = write_dicom(
        image,
        tmp_path / "marked.dcm",
        attributes=MARKING,
        patient_name="SYNTHETIC^PATIENT",
        patient_id="SYN-0001",
        study_description="synthetic study",
        series_description="synthetic CT",
    )
    ds = pydicom.dcmread(out)
    assert ds.ConversionType == "SYN" and ds.ContentQualification == "RESEARCH"
    assert ds.PatientName == "SYNTHETIC^PATIENT" and ds.PatientID == "SYN-0001"
    assert ds.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
    original = pydicom.dcmread(SINGLE / "CT_small.dcm")
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        assert ds[keyword].value != original[keyword].value  # never a real UID
    assert dciodvfy_errors(out) == []


def test_ct_is_stored_as_int16_hu(tmp_path: Path) -> None:
    image = read_dicom(require(SINGLE / "CT_small.dcm"))
    ds = pydicom.dcmread(write_dicom(image, tmp_path / "ct.dcm"))
    assert (ds.BitsAllocated, ds.PixelRepresentation, ds.RescaleType) == (16, 1, "HU")
    assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (1.0, 0.0)
    assert ds.pixel_array.dtype == np.int16


def test_float_values_are_kept_within_half_a_step(tmp_path: Path) -> None:
    """A float T1 volume (real, scaled to a non-integer range) survives 16-bit storage."""
    source = read_image(require(ITK_DATA / "KmeansTest_T1UCharRaw.nii.gz"))
    image = source.with_array(source.array.astype(np.float32) * 0.0137 - 0.5, modality="MR")
    out = write_dicom(image, tmp_path / "t1")
    slope = float(pydicom.dcmread(next(out.iterdir())).RescaleSlope)
    back = read_dicom_series(out)
    assert_same_values(back, image, atol=slope / 2 + 1e-6)


def test_refusals_leave_nothing_behind(tmp_path: Path) -> None:
    volume = read_dicom(require(SINGLE / "emri_small.dcm"))
    with pytest.raises(InvalidInput, match="folder of slices"):
        write_dicom(volume, tmp_path / "volume.dcm")
    ct = read_dicom(require(SINGLE / "CT_small.dcm"))
    with pytest.raises(InvalidInput, match="NaN"):
        write_dicom(ct.with_array(np.full(ct.array.shape, np.nan, np.float32)), tmp_path / "nan.dcm")
    with pytest.raises(InvalidInput, match="unknown DICOM keywords"):
        write_dicom(ct, tmp_path / "bad.dcm", attributes={"NotAKeyword": 1})
    assert list(tmp_path.iterdir()) == []


def test_two_dimensional_plane_is_kept(tmp_path: Path) -> None:
    image = read_dicom(require(SINGLE / "MR_small.dcm"))
    back = read_dicom(write_dicom(image, tmp_path / "mr.dcm"))
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient"):
        np.testing.assert_allclose(back.metadata[keyword], image.metadata[keyword], atol=1e-5)
    synthetic = Image(np.zeros((4, 5), np.uint8))  # no plane known: none is invented
    ds = pydicom.dcmread(write_dicom(synthetic, tmp_path / "plain.dcm"))
    assert "ImagePositionPatient" not in ds and "FrameOfReferenceUID" not in ds
