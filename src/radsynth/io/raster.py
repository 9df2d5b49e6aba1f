"""PNG and JPEG through Pillow: 2D grey (8/16-bit) or RGB pictures with no patient geometry.

A PNG written here records what its numbers mean in tEXt chunks (``radsynth:*``: the value
range mapped onto 0..2^bits-1, the pixel spacing in mm, modality, units) next to any text
the caller adds (the synthetic marking). Reading puts every text chunk in
``metadata["png_text"]`` and takes the spacing back; pixel values are returned as stored
(codes, not the original units): ``metadata["value_range"]`` says how to map them back.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from radsynth.errors import InvalidInput, UnreadableImage
from radsynth.io.atomic import atomic_path
from radsynth.io.image import Image, unit_spacing_assumed
from radsynth.io.problems import check_claimed_size, one_line

RASTER_SUFFIXES = (".png", ".jpg", ".jpeg")
NO_SPACING = {"pixel_spacing": "unit: PNG/JPEG carry no physical pixel spacing"}


def read_raster(path: str | Path) -> Image:
    """A PNG or JPEG as a 2D grey (uint8/uint16) or RGB (uint8) ``Image``; alpha dropped.

    Colour files whose three channels are equal everywhere (grey scans saved as RGB or
    with a grey palette) come back grey. The header's width and height are checked against
    the file's size before the pixels are decoded.
    """
    from PIL import Image as PILImage

    path = Path(path)
    try:
        with PILImage.open(path) as pic:
            itemsize = 4 if pic.mode in ("I", "F") else 2 if "16" in pic.mode else 1
            shape = (pic.height, pic.width, len(pic.getbands()))
            check_claimed_size(shape, itemsize, path.stat().st_size, path)
            pic.load()
            text = {str(k): str(v) for k, v in getattr(pic, "text", {}).items()}
            array, rgb = _pixels(pic)
    except (OSError, ValueError, SyntaxError, PILImage.DecompressionBombError) as err:
        raise UnreadableImage(f"cannot read image: {one_line(err)}", path) from err
    metadata: dict = {"source_path": str(path)}
    if text:
        metadata["png_text"] = text
    spacing = _floats(text.get("radsynth:spacing"), 2)
    if spacing is None:
        metadata["geometry_assumed"] = dict(NO_SPACING)
    value_range = _floats(text.get("radsynth:value_range"), 2)
    if value_range is not None:  # pixels are codes; value_range (in value_units) maps them back
        metadata["value_range"] = list(value_range)
        metadata["value_units"] = text.get("radsynth:units", "")
    return Image(
        array=array,
        spacing=spacing or (),
        modality=text.get("radsynth:modality", "OT"),
        units="" if value_range is not None else text.get("radsynth:units", ""),
        rgb=rgb,
        metadata=metadata,
    )


def _pixels(pic) -> tuple[np.ndarray, bool]:
    """numpy pixels of a Pillow image and whether they are colour."""
    mode = pic.mode
    if mode in ("L", "I;16", "I;16B", "I;16L"):
        array = np.asarray(pic)
        return array.astype(array.dtype.newbyteorder("="), copy=False), False
    if mode == "I":  # 16-bit PNG on some Pillow versions: int32 holding 0..65535
        array = np.asarray(pic)
        return (array.astype(np.uint16) if array.min() >= 0 and array.max() <= 65535 else array), False
    if mode in ("1", "LA", "La"):
        return np.asarray(pic.convert("L")), False
    rgb = np.asarray(pic.convert("RGB"))  # palette, RGBA, CMYK, YCbCr, ...
    if bool(np.all(rgb[..., :1] == rgb)):  # grey saved as colour: one channel says it all
        return np.ascontiguousarray(rgb[..., 0]), False
    return rgb, True


def _floats(text: str | None, n: int) -> tuple[float, ...] | None:
    if not text:
        return None
    try:
        values = tuple(float(v) for v in text.split())
    except ValueError:
        return None
    return values if len(values) == n else None


def write_png(
    image: Image,
    path: str | Path,
    *,
    bits: int = 8,
    value_range: tuple[float, float] | None = None,
    text: Mapping[str, str] | None = None,
) -> Path:
    """Write a 2D image as an 8- or 16-bit PNG.

    Integer pixels that already fit ``bits`` are written as they are. Otherwise (floats,
    CT in HU, ...) ``value_range=(lo, hi)`` in the image's units, or its min/max, is mapped
    linearly onto 0..2^bits-1 (values outside are clipped) and recorded in the
    ``radsynth:value_range`` text chunk. ``text`` adds tEXt chunks (key -> value).
    """
    from PIL import Image as PILImage
    from PIL.PngImagePlugin import PngInfo

    path = Path(path)
    codes, used_range = to_codes(image, bits, value_range, path)
    chunks = _text_chunks(image, bits, used_range)
    chunks.update(text or {})
    info = PngInfo()
    for key, value in chunks.items():
        info.add_text(str(key), str(value))
    pic = PILImage.fromarray(codes)
    with atomic_path(path) as tmp:
        pic.save(tmp, format="PNG", pnginfo=info)
    return path


def write_jpeg(
    image: Image,
    path: str | Path,
    *,
    value_range: tuple[float, float] | None = None,
    quality: int = 95,
    comment: str | None = None,
) -> Path:
    """Write a 2D image as an 8-bit JPEG (lossy: for viewing and robustness tests only)."""
    from PIL import Image as PILImage

    path = Path(path)
    codes, _ = to_codes(image, 8, value_range, path)
    pic = PILImage.fromarray(codes)
    with atomic_path(path) as tmp:
        pic.save(tmp, format="JPEG", quality=quality, comment=(comment or "").encode("utf-8"))
    return path


def to_codes(
    image: Image, bits: int, value_range: tuple[float, float] | None, where: object = None
) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Pixel codes for a ``bits``-bit raster, and the value range mapped (None if as is)."""
    if bits not in (8, 16):
        raise InvalidInput(f"bits must be 8 or 16, got {bits}", where)
    if image.spatial_ndim != 2:
        raise InvalidInput(f"a PNG/JPEG holds one 2D image; got shape {image.array.shape}", where)
    if image.rgb and bits == 16:
        raise InvalidInput("16-bit RGB is not supported; use bits=8 for colour", where)
    array = image.array
    dtype = np.uint8 if bits == 8 else np.uint16
    top = np.iinfo(dtype).max
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if value_range is None and array.dtype.kind in "iu" and array.min() >= 0 and array.max() <= top:
        return array.astype(dtype), None
    lo, hi = value_range if value_range is not None else _finite_range(array, where)
    if not hi > lo:
        raise InvalidInput(f"value_range needs hi > lo, got ({lo}, {hi})", where)
    scaled = (array.astype(np.float64) - lo) / (hi - lo)
    return np.round(np.clip(scaled, 0.0, 1.0) * top).astype(dtype), (float(lo), float(hi))


def _finite_range(array: np.ndarray, where: object) -> tuple[float, float]:
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise InvalidInput("pixels contain NaN or infinite values; give value_range", where)
    lo, hi = float(array.min()), float(array.max())
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def _text_chunks(image: Image, bits: int, used_range: tuple[float, float] | None) -> dict[str, str]:
    chunks = {
        "radsynth:bits": str(bits),
        "radsynth:modality": image.modality,
    }
    if not unit_spacing_assumed(image):
        chunks["radsynth:spacing"] = f"{image.spacing[0]!r} {image.spacing[1]!r}"
    if image.units:
        chunks["radsynth:units"] = image.units
    if used_range is not None:
        chunks["radsynth:value_range"] = f"{used_range[0]!r} {used_range[1]!r}"
    return chunks
