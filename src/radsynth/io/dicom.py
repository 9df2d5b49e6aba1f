"""Read one DICOM file (single- or multi-frame) into an ``Image``.

A single-frame file becomes a 2D image: (x, y) spacing from Pixel Spacing, and the
slice's 3D plane (Image Position / Orientation (Patient)) kept in ``metadata`` so a
writer can put it back. A multi-frame file becomes a 3D volume whose frames are sorted
along the slice normal (enhanced objects, RT dose grids) or kept in file order when the
file gives no positions (cine, NM), with ``metadata["geometry_assumed"]`` saying so.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from radsynth.errors import MixedOrientations, RadsynthError, UnreadableImage
from radsynth.io.dicom_file import has_pixels, read_dataset
from radsynth.io.dicom_geometry import (
    assumed_stack,
    frame_orientation,
    frame_positions,
    pixel_spacing,
    same_orientation,
    stack_slices,
)
from radsynth.io.dicom_pixels import decode_pixels
from radsynth.io.dicom_tags import dicom_metadata
from radsynth.io.image import Image
from radsynth.io.problems import one_line

if TYPE_CHECKING:
    from pydicom import Dataset


def read_dicom(path: str | Path) -> Image:
    """One DICOM file as an ``Image`` (2D for one frame, 3D for several).

    Values are rescaled (CT in HU as float32), MONOCHROME1 is inverted, colour is RGB.
    Raises ``UnreadableImage`` (truncated, not DICOM, no pixel data, no decoder) and
    ``GeometryMismatch`` (frames that do not form one volume).
    """
    path = Path(path)
    return image_from_dataset(read_dataset(path), path)


def image_from_dataset(ds: Dataset, path: Path) -> Image:
    """Pixels + geometry + metadata of a parsed data set (see ``read_dicom``)."""
    if not has_pixels(ds):
        raise UnreadableImage(_why_no_pixels(ds), path)
    try:
        pixels = decode_pixels(ds, path)
        spacing_xy, assumed = pixel_spacing(ds)
        metadata = dicom_metadata(ds, pixels.notes)
        n_frames = pixels.array.shape[0]
        if n_frames == 1:
            return _image(pixels.array[0], spacing_xy, (), None, ds, pixels, metadata, assumed, path)
        stack = _frame_stack(ds, n_frames, spacing_xy, path)
        assumed = {**assumed, **stack.assumed}
        array = pixels.array[stack.order]
        return _image(
            array, stack.spacing, stack.origin, stack.direction, ds, pixels, metadata, assumed, path
        )
    except RadsynthError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, EOFError, OSError) as err:
        # Malformed attribute values (e.g. Number of Frames '1A') surface only when used.
        raise UnreadableImage(f"malformed DICOM: {one_line(err)}", path) from err


def _why_no_pixels(ds: Dataset) -> str:
    """An image SOP class without Pixel Data was cut short; other objects are not images."""
    if len(ds) == 0:
        return "no DICOM elements after the header: truncated file"
    kind = getattr(ds.get("SOPClassUID"), "name", None) or "no SOP Class UID"
    if kind.endswith("Image Storage"):
        return f"no Pixel Data in a {kind} object: truncated or stripped file"
    return f"no Pixel Data: not an image ({kind})"


def _frame_stack(ds: Dataset, n_frames: int, spacing_xy: tuple[float, float], path: Path):
    """Sorted geometry for frames with positions, file order (assumed) otherwise."""
    positions = frame_positions(ds, n_frames)
    orientations = [frame_orientation(ds, i) for i in range(n_frames)]
    if positions is None or any(o is None for o in orientations):
        return assumed_stack(ds, n_frames, spacing_xy)
    if not same_orientation(orientations):
        raise MixedOrientations("frames have mixed orientations: not one volume", path)
    return stack_slices(positions, orientations[0], spacing_xy, path)


def _image(array, spacing, origin, direction, ds, pixels, metadata, assumed, path: Path) -> Image:
    if assumed:
        metadata["geometry_assumed"] = assumed
    metadata["source_path"] = str(path)
    return Image(
        array=array,
        spacing=spacing,
        origin=origin,
        direction=direction,
        modality=str(ds.get("Modality", "") or "OT"),
        units=pixels.units,
        rgb=pixels.rgb,
        metadata=metadata,
    )
