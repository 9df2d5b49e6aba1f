"""Decode a DICOM data set's pixels into the numbers they mean.

pydicom (with pylibjpeg, openjpeg and gdcm installed) picks the decoder for the transfer
syntax and converts YBR colour to RGB. On top of that: the Modality LUT (Rescale
Slope/Intercept, per frame for enhanced objects, Dose Grid Scaling for RT Dose) so CT comes
out in HU; MONOCHROME1 inverted so bright means dense everywhere; palette colour expanded
to RGB.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from radsynth.errors import UnreadableImage
from radsynth.io.dicom_frames import frame_value, number_of_frames
from radsynth.io.problems import check_claimed_size, one_line

if TYPE_CHECKING:
    from pydicom import Dataset


@dataclass(frozen=True)
class Pixels:
    """Decoded frames: ``array`` is ``(frames, rows, columns[, 3])`` in native byte order."""

    array: np.ndarray
    rgb: bool
    units: str
    notes: dict[str, Any] = field(default_factory=dict)


def decode_pixels(ds: Dataset, path: Path) -> Pixels:
    """All frames of ``ds`` as meaningful values (HU for CT, Gy for RT dose, RGB colour)."""
    frames = _decode_frames(ds, path)
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    if photometric == "PALETTE COLOR":
        from pydicom.pixels import apply_color_lut

        return Pixels(np.ascontiguousarray(apply_color_lut(frames, ds)), True, "")
    if frames.ndim == 4:
        return Pixels(frames, True, "")
    slopes, intercepts = _rescale_per_frame(ds, len(frames))
    values = _apply_rescale(frames, slopes, intercepts, force_float=ds.get("Modality") == "CT")
    notes: dict[str, Any] = {}
    if photometric == "MONOCHROME1":
        values, pivot = _invert_monochrome1(values, ds, slopes, intercepts)
        notes["monochrome1_inverted_about"] = pivot
    return Pixels(values, False, _units(ds), notes)


def _decode_frames(ds: Dataset, path: Path) -> np.ndarray:
    """pydicom's decoding, with a frame axis always present and native byte order."""
    syntax = ds.file_meta.get("TransferSyntaxUID")
    check_claimed_pixels(ds, path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # padding / VR notes; failures raise below
            array = ds.pixel_array
    except Exception as err:  # decoder plugins raise anything from RuntimeError to KeyError
        name = getattr(syntax, "name", syntax) or "unknown transfer syntax"
        raise UnreadableImage(f"cannot decode {name} pixel data: {one_line(err)}", path) from err
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if array.ndim == (2 if samples == 1 else 3):
        array = array[None]  # (1, rows, columns[, 3])
    expected = (int(ds.Rows), int(ds.Columns))
    if array.shape[1:3] != expected:
        raise UnreadableImage(f"decoded pixels {array.shape} do not match Rows x Columns {expected}", path)
    if array.shape[0] != number_of_frames(ds):
        raise UnreadableImage(
            f"decoded {array.shape[0]} frames but Number of Frames is {number_of_frames(ds)}", path
        )
    return array.astype(array.dtype.newbyteorder("="), copy=False)


def check_claimed_pixels(ds: Dataset, path: Path) -> None:
    """Rows x Columns x frames x samples against the voxel limit and, for native (not
    encapsulated) pixel data, against the bytes the element holds: before the decoder
    allocates what the header claims. Missing attributes are left to pydicom to name."""
    if not all(k in ds for k in ("Rows", "Columns", "BitsAllocated")):
        return
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "YBR_FULL_422":
        samples = 2  # chroma shared by two pixels: 2 samples per pixel stored, not 3
    shape = (number_of_frames(ds), int(ds.Rows), int(ds.Columns), samples)
    check_claimed_size(shape, 1, None, path)
    keyword = next((k for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData") if k in ds), None)
    element = ds[keyword] if keyword else None
    if element is None or element.is_undefined_length or element.value is None:
        return  # encapsulated: the codec's output size is bounded by the voxel limit alone
    needed = (shape[0] * shape[1] * shape[2] * samples * int(ds.BitsAllocated) + 7) // 8
    if len(element.value) < needed:
        raise UnreadableImage(
            f"pixel data holds {len(element.value):,} bytes, less than expected: "
            f"{needed:,} for {shape[0]} x {shape[1]} x {shape[2]} pixels",
            path,
        )


def _rescale_per_frame(ds: Dataset, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Rescale Slope and Intercept for each frame (functional groups or top level)."""
    slopes = np.ones(n_frames)
    intercepts = np.zeros(n_frames)
    for i in range(n_frames):
        slopes[i] = float(frame_value(ds, i, "PixelValueTransformationSequence", "RescaleSlope", 1.0))
        intercepts[i] = float(frame_value(ds, i, "PixelValueTransformationSequence", "RescaleIntercept", 0.0))
    if ds.get("DoseGridScaling") not in (None, ""):
        slopes *= float(ds.DoseGridScaling)  # RT Dose: stored integers x scaling = dose
    return slopes, intercepts


def _apply_rescale(
    frames: np.ndarray, slopes: np.ndarray, intercepts: np.ndarray, force_float: bool
) -> np.ndarray:
    """Stored values -> output units; integers stay integers when the rescale is identity."""
    identity = np.all(slopes == 1.0) and np.all(intercepts == 0.0)
    if identity and not force_float and not np.issubdtype(frames.dtype, np.floating):
        return frames
    out = frames.astype(np.float64) * slopes[:, None, None] + intercepts[:, None, None]
    return out.astype(np.float32)


def _invert_monochrome1(
    values: np.ndarray, ds: Dataset, slopes: np.ndarray, intercepts: np.ndarray
) -> tuple[np.ndarray, float]:
    """Flip MONOCHROME1 (white = low) about the middle of the range the stored bits allow.

    Using the representable range, not the image's own min/max, keeps the mapping the same
    for every image of a series.
    """
    bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)))
    signed = int(ds.get("PixelRepresentation", 0)) == 1
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    ends = np.array([lo * slopes[0] + intercepts[0], hi * slopes[0] + intercepts[0]])
    pivot = float(ends.min() + ends.max())
    if np.issubdtype(values.dtype, np.integer):
        return (int(pivot) - values.astype(np.int64)).astype(values.dtype), pivot
    return (pivot - values).astype(values.dtype), pivot


def _units(ds: Dataset) -> str:
    """What the output numbers mean: HU for CT, dose or PET units, Rescale Type, else ''."""
    modality = str(ds.get("Modality", "")).upper()
    if modality == "CT":
        return "HU"
    if modality == "RTDOSE" and ds.get("DoseUnits"):
        dose_units = str(ds.DoseUnits)
        return "Gy" if dose_units.upper() == "GY" else dose_units.lower()
    if modality == "PT" and ds.get("Units"):
        return str(ds.Units)
    rescale_type = str(frame_value(ds, 0, "PixelValueTransformationSequence", "RescaleType", ""))
    return "" if rescale_type.upper() in ("", "US") else rescale_type
