"""PNG and JPEG: exact 8/16-bit round trips, value ranges and text chunks recorded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image as PILImage
from pydicom.data import get_testdata_file
from pydicom.encaps import generate_frames

from radsynth.errors import InvalidInput
from radsynth.io import read_dicom, read_image, read_raster, write_jpeg, write_png

from .io_helpers import ITK_DATA, SINGLE, require


@pytest.fixture
def brain_t1() -> Path:
    return require(ITK_DATA / "BrainT1Slice.png")


def test_grey_png_saved_as_rgb_reads_grey(brain_t1: Path) -> None:
    image = read_image(brain_t1)
    assert not image.rgb and image.array.shape == (217, 181) and image.array.dtype == np.uint8
    np.testing.assert_array_equal(image.array, np.asarray(PILImage.open(brain_t1))[..., 0])
    assert image.metadata["geometry_assumed"]["pixel_spacing"].startswith("unit")


def test_png_8_bit_round_trip_is_exact_with_text(brain_t1: Path, tmp_path: Path) -> None:
    image = read_image(brain_t1)
    out = write_png(image, tmp_path / "t1.png", text={"Synthetic": "no", "Source": brain_t1.name})
    back = read_raster(out)
    np.testing.assert_array_equal(back.array, image.array)
    assert back.metadata["png_text"]["Synthetic"] == "no"
    assert back.metadata["png_text"]["Source"] == brain_t1.name
    assert "value_range" not in back.metadata  # stored as is, no mapping


def test_png_16_bit_with_value_range(brain_t1: Path, tmp_path: Path) -> None:
    image = read_image(brain_t1)
    out = write_png(image, tmp_path / "t1_16.png", bits=16, value_range=(0, 255))
    back = read_raster(out)
    assert back.array.dtype == np.uint16
    assert back.metadata["value_range"] == [0.0, 255.0]
    lo, hi = back.metadata["value_range"]
    restored = back.array / 65535 * (hi - lo) + lo
    np.testing.assert_allclose(restored, image.array, atol=(hi - lo) / 65535 / 2 + 1e-9)


def test_float_ct_maps_window_and_keeps_spacing(tmp_path: Path) -> None:
    ct = read_dicom(require(SINGLE / "CT_small.dcm"))  # float32 HU
    out = write_png(ct, tmp_path / "ct.png", value_range=(-1000.0, 1000.0))
    back = read_raster(out)
    expected = np.round(np.clip((ct.array + 1000.0) / 2000.0, 0, 1) * 255)
    np.testing.assert_array_equal(back.array, expected)
    assert back.spacing == pytest.approx(ct.spacing)
    assert back.metadata["value_units"] == "HU" and back.units == ""
    auto = read_raster(write_png(ct, tmp_path / "auto.png", bits=16))
    assert auto.metadata["value_range"] == [float(ct.array.min()), float(ct.array.max())]
    assert auto.array.min() == 0 and auto.array.max() == 65535


def test_png_refusals(tmp_path: Path) -> None:
    volume = read_image(require(ITK_DATA / "BrainProtonDensity3Slices.mha"))
    with pytest.raises(InvalidInput, match="2D"):
        write_png(volume, tmp_path / "v.png")
    with pytest.raises(InvalidInput, match="bits"):
        write_png(read_image(require(ITK_DATA / "BrainT1Slice.png")), tmp_path / "b.png", bits=12)
    assert list(tmp_path.iterdir()) == []


def test_jpeg_read_matches_dicom_decoding(tmp_path: Path) -> None:
    """The JPEG baseline stream inside a DICOM file, saved as .jpg, decodes to the same RGB."""
    ds = pydicom.dcmread(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm"))
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.JPEGBaseline8Bit
    stream = next(generate_frames(ds.PixelData, number_of_frames=1))
    path = tmp_path / "frame.jpg"
    path.write_bytes(stream)
    image = read_image(path)
    assert image.rgb and image.array.shape == (ds.Rows, ds.Columns, 3)
    assert np.abs(image.array.astype(int) - ds.pixel_array.astype(int)).mean() < 2
    again = read_image(write_jpeg(image, tmp_path / "again.jpeg", quality=95))
    assert np.abs(again.array.astype(int) - image.array.astype(int)).mean() < 4
