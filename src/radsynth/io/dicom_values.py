"""Choose the integers a DICOM file stores for an image, and the rescale that undoes it.

DICOM pixels are integers; meaning comes through the Modality LUT (value = stored x
Rescale Slope + Rescale Intercept). Integer images that fit 8 or 16 bits are stored as
they are; integral floats (CT in HU) as int16 with slope 1; other floats are spread over
the 16-bit range, so the error is at most half a step (slope / 2, in output units).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from radsynth.errors import InvalidInput
from radsynth.io.image import Image

INT16 = (-32768, 32767)
UINT16 = (0, 65535)


@dataclass(frozen=True)
class StoredPixels:
    """What goes into Pixel Data: ``value = array * slope + intercept``."""

    array: np.ndarray
    slope: float = 1.0
    intercept: float = 0.0

    @property
    def bits(self) -> int:
        return self.array.dtype.itemsize * 8

    @property
    def signed(self) -> bool:
        return self.array.dtype.kind == "i"

    @property
    def rescaled(self) -> bool:
        return self.slope != 1.0 or self.intercept != 0.0


def ds_number(value: float) -> float:
    """``value`` as it will read back from a DS string (at most 16 characters)."""
    from pydicom.valuerep import format_number_as_ds

    return float(format_number_as_ds(float(value)))


def stored_pixels(image: Image, where: object = None) -> StoredPixels:
    """Stored integers for ``image`` (CT -> int16), exact whenever the values allow."""
    array = image.array
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if image.rgb:
        return _rgb(array, where)
    if np.issubdtype(array.dtype, np.complexfloating) or array.dtype.kind not in "iuf":
        raise InvalidInput(f"cannot store pixels of type {array.dtype} in DICOM", where)
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise InvalidInput("pixels contain NaN or infinite values", where)
    if array.size == 0:
        raise InvalidInput("empty image", where)
    signed = image.modality == "CT"
    if array.dtype == np.uint8:
        return StoredPixels(array)
    lo, hi = float(array.min()), float(array.max())
    integral = array.dtype.kind in "iu" or bool(np.all(array == np.round(array)))
    if integral:
        if not signed and UINT16[0] <= lo and hi <= UINT16[1] and (array.dtype.kind == "u" or lo >= 0):
            return StoredPixels(array.astype(np.uint16))
        if INT16[0] <= lo and hi <= INT16[1]:
            return StoredPixels(array.astype(np.int16))
    return _quantized(array, lo, hi, signed)


def _rgb(array: np.ndarray, where: object) -> StoredPixels:
    """Colour is stored as it is: 8, 16 or 32 bits unsigned per sample."""
    if array.dtype in (np.uint8, np.uint16, np.uint32):
        return StoredPixels(array)
    if array.dtype.kind in "iu" and array.min() >= 0 and array.max() <= UINT16[1]:
        return StoredPixels(array.astype(np.uint16))
    raise InvalidInput(f"RGB pixels must be unsigned integers, got {array.dtype}", where)


def _quantized(array: np.ndarray, lo: float, hi: float, signed: bool) -> StoredPixels:
    """Spread [lo, hi] over 65536 levels; slope and intercept rounded as DS will be."""
    dtype, (low_code, high_code) = (np.int16, INT16) if signed else (np.uint16, UINT16)
    slope = ds_number((hi - lo) / (high_code - low_code)) if hi > lo else 1.0
    intercept = ds_number(lo - low_code * slope)
    codes = np.round((array.astype(np.float64) - intercept) / slope)
    return StoredPixels(np.clip(codes, low_code, high_code).astype(dtype), slope, intercept)
