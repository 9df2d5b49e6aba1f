"""Patient geometry (LPS, mm) of DICOM frames and slices.

DICOM gives each slice its own plane: Image Position (Patient) is the centre of the first
transmitted pixel, Image Orientation (Patient) the direction cosines of a row (increasing
column index, our x) and of a column (increasing row index, our y). Pixel Spacing is
(row spacing, column spacing) = (y, x) in mm. A volume's z axis is the slice normal
row x column, and slices are ordered by their position projected on it: file names and
Instance Numbers are not reliable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from radsynth.errors import GeometryMismatch, MissingSlices, RepeatedPositions
from radsynth.io.dicom_frames import frame_value

if TYPE_CHECKING:
    from pydicom import Dataset

# A gap this many times the typical spacing means a slice is missing.
MISSING_SLICE_FACTOR = 1.5
# Spacings may wobble this much (fraction of the typical spacing) from rounding.
SPACING_TOLERANCE = 0.1
ORIENTATION_TOLERANCE = 1e-3


@dataclass(frozen=True)
class StackGeometry:
    """Where the sorted slices of a volume lie; ``order[k]`` is the input index of slice k."""

    order: np.ndarray
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]
    direction: np.ndarray
    assumed: dict[str, str] = field(default_factory=dict)


def floats(value) -> np.ndarray | None:
    """A DICOM multi-value as a float array (None when absent or empty)."""
    if value is None or value == "":
        return None
    return np.array([float(v) for v in value], dtype=float)


def pixel_spacing(ds: Dataset) -> tuple[tuple[float, float], dict[str, str]]:
    """In-plane (x, y) spacing in mm, and what was assumed when the file does not say."""
    spacing = floats(frame_value(ds, 0, "PixelMeasuresSequence", "PixelSpacing"))
    if spacing is not None and np.all(spacing > 0):
        return (float(spacing[1]), float(spacing[0])), {}
    for keyword in ("ImagerPixelSpacing", "NominalScannedPixelSpacing"):
        spacing = floats(ds.get(keyword))
        if spacing is not None and np.all(spacing > 0):
            note = f"from {keyword} (no PixelSpacing; at the detector, not the patient)"
            return (float(spacing[1]), float(spacing[0])), {"pixel_spacing": note}
    return (1.0, 1.0), {"pixel_spacing": "unit: the file has no PixelSpacing or ImagerPixelSpacing"}


def frame_orientation(ds: Dataset, index: int) -> np.ndarray | None:
    """Image Orientation (Patient) of frame ``index``: 6 direction cosines."""
    return floats(frame_value(ds, index, "PlaneOrientationSequence", "ImageOrientationPatient"))


def frame_positions(ds: Dataset, n_frames: int) -> np.ndarray | None:
    """Image Position (Patient) of every frame, ``(n_frames, 3)`` mm, or None if unknown."""
    if "GridFrameOffsetVector" in ds and "ImagePositionPatient" in ds:
        return _rt_dose_positions(ds, n_frames)
    positions = [
        floats(frame_value(ds, i, "PlanePositionSequence", "ImagePositionPatient")) for i in range(n_frames)
    ]
    if any(p is None or p.shape != (3,) for p in positions):
        return None
    if n_frames > 1 and "PerFrameFunctionalGroupsSequence" not in ds:
        return None  # one top-level position cannot place several frames
    return np.stack(positions)


def _rt_dose_positions(ds: Dataset, n_frames: int) -> np.ndarray | None:
    """RT Dose planes: offsets along the normal from the first plane (PS3.3 C.8.8.3.2)."""
    offsets = floats(ds.GridFrameOffsetVector)
    orientation = frame_orientation(ds, 0)
    if offsets is None or len(offsets) != n_frames or orientation is None:
        return None
    normal = np.cross(orientation[:3], orientation[3:])
    # A first offset of 0 means relative offsets; otherwise they are absolute z values
    # whose first one is the first plane's: subtracting it makes both cases relative.
    return floats(ds.ImagePositionPatient) + np.outer(offsets - offsets[0], normal)


def direction_from_orientation(orientation: np.ndarray) -> np.ndarray:
    """3x3 direction: columns are the row cosine (x), column cosine (y) and normal (z)."""
    row = orientation[:3] / np.linalg.norm(orientation[:3])
    col = orientation[3:] / np.linalg.norm(orientation[3:])
    return np.column_stack([row, col, np.cross(row, col)])


def same_orientation(orientations: list[np.ndarray]) -> bool:
    return all(np.allclose(o, orientations[0], atol=ORIENTATION_TOLERANCE) for o in orientations)


def stack_slices(
    positions: np.ndarray,
    orientation: np.ndarray,
    spacing_xy: tuple[float, float],
    where: Path,
) -> StackGeometry:
    """Sort slices along their normal; check they form one evenly spaced, unsheared stack.

    ``positions`` is ``(n, 3)`` in mm. Raises ``GeometryMismatch`` naming ``where`` for a
    repeated position (multi-echo or 4D data), a missing slice, uneven spacing or shear.
    """
    direction = direction_from_orientation(orientation)
    along = positions @ direction[:, 2]  # (n,) mm along the normal
    order = np.argsort(along, kind="stable")
    along = along[order]
    n = len(order)
    if n == 1:
        return StackGeometry(order, (*spacing_xy, 1.0), tuple(positions[0]), direction)
    steps = np.diff(along)
    typical = float(np.median(steps))
    distinct = len(np.unique(np.round(along, 3)))
    if distinct < n:
        raise RepeatedPositions(
            f"{n - distinct} slices repeat a position ({distinct} distinct positions for {n} slices): "
            "several echoes, phases or volumes mixed in one series; split them first",
            where,
        )
    _check_gaps(steps, along, typical, where)
    spacing_z = float((along[-1] - along[0]) / (n - 1))
    _check_shear(positions[order], along, direction, spacing_xy, where)
    return StackGeometry(order, (*spacing_xy, spacing_z), tuple(positions[order[0]]), direction)


def _check_gaps(steps: np.ndarray, along: np.ndarray, typical: float, where: Path) -> None:
    big = int(np.argmax(steps))
    if steps[big] > MISSING_SLICE_FACTOR * typical:
        raise MissingSlices(
            f"missing slice: gap of {steps[big]:.3f} mm between slices at {along[big]:.3f} and "
            f"{along[big + 1]:.3f} mm along the normal, where the spacing is {typical:.3f} mm",
            where,
        )
    if np.max(np.abs(steps - typical)) > SPACING_TOLERANCE * typical:
        raise GeometryMismatch(
            f"uneven slice spacing: steps from {steps.min():.3f} to {steps.max():.3f} mm", where
        )


def _check_shear(
    positions: np.ndarray, along: np.ndarray, direction: np.ndarray, spacing_xy, where: Path
) -> None:
    """Slices must stack along the normal; a sideways drift (gantry tilt) is not a grid."""
    expected = positions[0] + np.outer(along - along[0], direction[:, 2])
    drift = float(np.max(np.linalg.norm(positions - expected, axis=1)))
    if drift > 0.1 * min(spacing_xy) + 1e-3:
        raise GeometryMismatch(
            f"slices drift {drift:.3f} mm sideways from the slice normal (gantry tilt or "
            "sheared stack); resample before reading as one volume",
            where,
        )


def assumed_stack(ds: Dataset, n_frames: int, spacing_xy: tuple[float, float]) -> StackGeometry:
    """Frames without positions (cine, NM, stripped enhanced objects): keep file order.

    The slice step comes from Spacing Between Slices, else Slice Thickness, else 1 mm, and
    ``assumed`` says so.
    """
    orientation = frame_orientation(ds, 0)
    direction = np.eye(3) if orientation is None else direction_from_orientation(orientation)
    position = floats(frame_value(ds, 0, "PlanePositionSequence", "ImagePositionPatient"))
    origin = (0.0, 0.0, 0.0) if position is None or position.shape != (3,) else tuple(position)
    step, source = 1.0, "(unit: no positions, Spacing Between Slices or Slice Thickness)"
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = frame_value(ds, 0, "PixelMeasuresSequence", keyword)
        if value not in (None, "") and float(value) > 0:
            step, source = float(value), f"(from {keyword})"
            break
    assumed = {"slice_positions": f"frames stacked in file order, {step:g} mm apart {source}"}
    if orientation is None:
        assumed["orientation"] = "identity: the file has no Image Orientation (Patient)"
    return StackGeometry(np.arange(n_frames), (*spacing_xy, step), origin, direction, assumed)
