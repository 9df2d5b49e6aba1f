"""Every file pydicom ships for its own tests: read it, write it back, read it again.

Files with pixel data must round-trip through ``write_dicom`` (Secondary Capture) with the
same values (within the rescale step) and geometry. Files without pixel data, and the
files pydicom keeps deliberately broken, must raise ``UnreadableImage`` in one line.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_files

from radsynth.errors import UnreadableImage
from radsynth.io import read_dicom, read_dicom_series, write_dicom

from .io_helpers import assert_same_values

PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")

# Files pydicom's test-file README (and pydicom itself) describe as broken, with a fragment
# of the one-line problem read_dicom must report for each.
BROKEN = {
    "MR_truncated.dcm": "less than expected",  # pixel data cut short
    "JPEG-lossy.dcm": "cannot decode",  # README: invalid SOS parameters; JPGExtended.dcm is the fix
    "JPEG2000-embedded-sequence-delimiter.dcm": "cannot decode",  # README: codestream bytes replaced
    "badVR.dcm": "'1A'",  # Number of Frames (IS) holds '1A'
    "nested_priv_SQ.dcm": "Bits Allocated",  # Pixel Data without Bits Allocated
    "meta_missing_tsyntax.dcm": "Bits Allocated",  # no transfer syntax and no Bits Allocated
}


def _has_pixels(path: str) -> bool:
    """Inspect with pydicom itself (forced, so raw data sets without preamble count)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, force=True, defer_size=1024)
    except Exception:
        return False
    return any(keyword in ds for keyword in PIXEL_KEYWORDS)


def _params(with_pixels: bool) -> list:
    params = []
    for name in sorted(get_testdata_files()):
        path = Path(name)
        if not path.is_file() or _has_pixels(name) != with_pixels:
            continue
        test_id = str(path.relative_to(path.parents[1] if path.parent.name != "test_files" else path.parent))
        if with_pixels and path.name in BROKEN:
            continue
        params.append(pytest.param(path, id=test_id))
    return params


def _pydicom_codec_missing(path: Path) -> str | None:
    """pydicom's reason when no installed plugin can decode this transfer syntax, else None."""
    ds = pydicom.dcmread(path)
    try:
        _ = ds.pixel_array
    except Exception as err:
        text = str(err)
        if "missing dependencies" in text or "No pixel data decoders" in text:
            syntax = ds.file_meta.TransferSyntaxUID
            return f"codec for {syntax.name} not installed: {text.splitlines()[0]}"
    return None


def _written_slope(out: Path) -> float:
    files = [out] if out.is_file() else sorted(out.iterdir())
    slopes = [float(pydicom.dcmread(f, stop_before_pixels=True).get("RescaleSlope", 1.0)) for f in files]
    return max(slopes)


@pytest.mark.parametrize("path", _params(with_pixels=True))
def test_round_trip(path: Path, tmp_path: Path) -> None:
    try:
        image = read_dicom(path)
    except UnreadableImage as err:
        reason = _pydicom_codec_missing(path)
        if reason:
            pytest.skip(reason)
        raise AssertionError(f"pydicom decodes it but read_dicom fails: {err}") from err
    json.dumps(image.metadata)  # plain values only
    out = tmp_path / ("image.dcm" if image.spatial_ndim == 2 else "series")
    write_dicom(image, out)
    back = read_dicom(out) if image.spatial_ndim == 2 else read_dicom_series(out)
    values = np.abs(image.array.astype(np.float64))
    # Half a rescale step, plus float32 rounding of large values.
    atol = _written_slope(out) / 2 + 1e-6 * float(values.max(initial=0.0)) + 1e-9
    assert_same_values(back, image, atol)
    assert back.modality == image.modality
    assert back.units == image.units
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient"):
        if image.spatial_ndim == 2 and keyword in image.metadata:
            np.testing.assert_allclose(back.metadata[keyword], image.metadata[keyword], atol=1e-4)


@pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about the bad values
@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_file_raises_one_line(name: str) -> None:
    path = Path(pydicom.data.get_testdata_file(name))
    with pytest.raises(Exception):  # noqa: B017 - pydicom itself cannot decode it either
        _ = pydicom.dcmread(path, force=True).pixel_array
    with pytest.raises(UnreadableImage) as caught:
        read_dicom(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    assert BROKEN[name] in message


@pytest.mark.parametrize("path", _params(with_pixels=False))
def test_file_without_pixels_raises(path: Path) -> None:
    """DICOMDIRs, reports, RT plans, JSON and text files: not images, said in one line."""
    with pytest.raises(UnreadableImage) as caught:
        read_dicom(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert "not a DICOM file" in message or "no Pixel Data" in message or "no DICOM" in message
