"""Volume -> 2D slices in radiological display orientation, resized to a square.

The plane is chosen from the direction matrix, never from array-axis habits: a NIfTI in
RAS, an NRRD in LPS and an ITK file in LSA all give the same picture. Display convention
(as on a PACS, viewed from the feet / from the front):

- axial: patient's right on image left, anterior at the top;
- coronal: patient's right on image left, superior at the top;
- sagittal: anterior on image left, superior at the top.

Each returned slice is a 2D :class:`Image` whose ``spacing`` is its pixel size in mm and
whose ``metadata["slice"]`` keeps where it lies in the patient (LPS mm), so a slice can be
put back or described ("mid thorax").
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
from PIL import Image as PILImage

from radsynth.errors import GeometryMismatch, InvalidInput
from radsynth.io.image import Image

PLANES = ("axial", "coronal", "sagittal")

# Patient axes in LPS: 0 = x (right -> left), 1 = y (anterior -> posterior), 2 = z (foot -> head).
# Per plane: (normal axis, display-column axis and sign, display-row axis and sign): the
# direction in LPS that a step to the right / a step down on screen moves.
_DISPLAY = {
    "axial": (2, (0, +1), (1, +1)),  # columns to patient left, rows to posterior
    "coronal": (1, (0, +1), (2, -1)),  # columns to patient left, rows to inferior
    "sagittal": (0, (1, +1), (2, -1)),  # columns to posterior, rows to inferior
}


def index_axes(direction: np.ndarray) -> tuple[int, int, int]:
    """For each patient axis (LPS x, y, z), the index axis (x=0, y=1, z=2) closest to it.

    Picks the permutation that best matches the direction columns, so oblique
    acquisitions map to their nearest plane and no two patient axes share an index axis.
    """
    d = np.abs(np.asarray(direction, float))
    best = max(itertools.permutations(range(3)), key=lambda p: sum(d[a, p[a]] for a in range(3)))
    return tuple(best)  # type: ignore[return-value]


def native_plane(volume: Image) -> str:
    """The plane the volume was acquired in: the one whose normal is the index z axis."""
    axes = index_axes(volume.direction)
    normal_patient_axis = axes.index(2)
    return next(p for p, (n, _, _) in _DISPLAY.items() if n == normal_patient_axis)


def _check_volume(volume: Image, plane: str) -> None:
    if plane not in PLANES:
        raise InvalidInput(f"unknown plane {plane!r}; choose one of {', '.join(PLANES)}")
    if volume.spatial_ndim != 3 or volume.rgb:
        raise GeometryMismatch(f"slicing needs a grey 3D volume, got shape {volume.array.shape}")


def slice_count(volume: Image, plane: str) -> int:
    """Number of slices the volume has in ``plane``."""
    _check_volume(volume, plane)
    normal = _DISPLAY[plane][0]
    index_axis = index_axes(volume.direction)[normal]
    return volume.array.shape[2 - index_axis]  # numpy order is (z, y, x)


def _orient(volume: Image, plane: str, array: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """The volume's array transposed/flipped to (slice, row, column) display order, and
    the geometry of that view: LPS unit vectors of slice/row/column steps, spacings, and
    the LPS position of element [0, 0, 0]."""
    normal, (col_axis, col_sign), (row_axis, row_sign) = _DISPLAY[plane]
    axes = index_axes(volume.direction)
    d = volume.direction
    a = volume.array if array is None else array
    steps, spacings, flips, np_axes = [], [], [], []
    for patient_axis, want_sign in ((normal, +1), (row_axis, row_sign), (col_axis, col_sign)):
        index_axis = axes[patient_axis]
        sign = np.sign(d[patient_axis, index_axis]) or 1.0
        flip = sign != want_sign
        step = d[:, index_axis] * (-1.0 if flip else 1.0)
        steps.append(step)
        spacings.append(volume.spacing[index_axis])
        flips.append(flip)
        np_axes.append(2 - index_axis)
    view = np.transpose(a, np_axes)
    start = np.array(volume.origin, float)
    for axis, flip in enumerate(flips):
        if flip:
            view = np.flip(view, axis=axis)
            index_axis = 2 - np_axes[axis]
            n = a.shape[np_axes[axis]]
            start = start + d[:, index_axis] * volume.spacing[index_axis] * (n - 1)
    geometry = {"steps": steps, "spacings": spacings, "start": start}
    return view, geometry


def extract_slice(
    volume: Image, plane: str, index: int, mask: np.ndarray | None = None
) -> tuple[Image, np.ndarray | None]:
    """Slice ``index`` of ``plane`` at native resolution, in display orientation.

    ``index`` counts from inferior (axial), anterior (coronal) or patient right
    (sagittal), whatever the file's storage order. ``mask`` (same shape as the volume's
    array) is cut the same way and returned alongside.
    """
    _check_volume(volume, plane)
    view, geo = _orient(volume, plane)
    if not 0 <= index < view.shape[0]:
        raise InvalidInput(f"slice {index} is outside 0..{view.shape[0] - 1} for plane {plane}")
    normal_step, row_step, col_step = geo["steps"]
    s_normal, s_row, s_col = geo["spacings"]
    origin = geo["start"] + normal_step * s_normal * index  # LPS mm of pixel [0, 0]
    pixels = np.ascontiguousarray(view[index])
    meta = {
        **volume.metadata,
        "slice": {
            "plane": plane,
            "index": int(index),
            "count": int(view.shape[0]),
            "origin_lps": [float(v) for v in origin],
            "row_direction": [float(v) for v in row_step],
            "column_direction": [float(v) for v in col_step],
            "normal": [float(v) for v in normal_step],
            "position_mm": float(origin @ _unit(normal_step)),
            "thickness_mm": float(s_normal),
        },
    }
    image = Image(
        pixels,
        spacing=(s_col, s_row),
        origin=(float(origin @ col_step), float(origin @ row_step)),
        modality=volume.modality,
        units=volume.units,
        metadata=meta,
    )
    mask_slice = None
    if mask is not None:
        if mask.shape != volume.array.shape:
            raise GeometryMismatch(f"mask of shape {mask.shape} does not fit volume {volume.array.shape}")
        mask_slice = np.ascontiguousarray(_orient(volume, plane, mask)[0][index])
    return image, mask_slice


def _unit(v: np.ndarray) -> np.ndarray:
    """The patient axis a step vector points along, as a signed unit axis (for positions)."""
    u = np.zeros(3)
    axis = int(np.argmax(np.abs(v)))
    u[axis] = 1.0
    return u


def _resize(array: np.ndarray, shape: tuple[int, int], nearest: bool) -> np.ndarray:
    """Resample a 2D float array to ``shape`` (rows, cols); antialiased when shrinking."""
    resample = PILImage.Resampling.NEAREST if nearest else PILImage.Resampling.BILINEAR
    pil = PILImage.fromarray(np.asarray(array, np.float32), mode="F")
    return np.asarray(pil.resize((shape[1], shape[0]), resample=resample), np.float32)


def resize_square(
    image: Image, size: int = 64, background: float | None = None, nearest: bool = False
) -> Image:
    """Fit a 2D image into ``size`` x ``size`` pixels, keeping the physical aspect ratio.

    The longer physical side fills the square; the shorter is centred and padded with
    ``background`` (default: the image minimum, i.e. air). Pixels become square with
    spacing ``max(extent) / size`` mm; ``nearest`` keeps label values intact for masks.
    ``metadata["slice"]["origin_lps"]`` moves to the new pixel [0, 0] when present.
    """
    if image.spatial_ndim != 2 or image.rgb:
        raise GeometryMismatch(f"resize_square needs a grey 2D image, got shape {image.array.shape}")
    if size < 2:
        raise InvalidInput(f"size must be at least 2 pixels, got {size}")
    rows, cols = image.array.shape
    s_col, s_row = image.spacing
    extent_x, extent_y = cols * s_col, rows * s_row  # mm
    spacing = max(extent_x, extent_y) / size
    new_cols = min(size, max(1, round(extent_x / spacing)))
    new_rows = min(size, max(1, round(extent_y / spacing)))
    fill = float(np.min(image.array)) if background is None else float(background)
    out = np.full((size, size), fill, np.float32)
    top, left = (size - new_rows) // 2, (size - new_cols) // 2
    out[top : top + new_rows, left : left + new_cols] = _resize(image.array, (new_rows, new_cols), nearest)
    # Centre of new pixel j, in old pixel-centre coordinates (pixel edges stay aligned).
    shift_x = (-left + 0.5) * spacing - 0.5 * s_col  # mm along the column direction
    shift_y = (-top + 0.5) * spacing - 0.5 * s_row  # mm along the row direction
    meta = dict(image.metadata)
    if "slice" in meta:
        sl = dict(meta["slice"])
        origin = np.array(sl["origin_lps"])
        origin = origin + np.array(sl["column_direction"]) * shift_x + np.array(sl["row_direction"]) * shift_y
        sl["origin_lps"] = [float(v) for v in origin]
        meta["slice"] = sl
    new_origin = (image.origin[0] + shift_x, image.origin[1] + shift_y)
    return replace(
        image, array=out, spacing=(spacing, spacing), origin=new_origin, direction=None, metadata=meta
    )


def volume_slices(
    volume: Image,
    plane: str,
    size: int = 64,
    indices: list[int] | None = None,
    background: float | None = None,
) -> Iterator[Image]:
    """Resized display-oriented slices of ``plane`` (all of them unless ``indices``)."""
    count = slice_count(volume, plane)
    for index in range(count) if indices is None else indices:
        image, _ = extract_slice(volume, plane, index)
        yield resize_square(image, size, background)


def display_view(volume: Image, plane: str, array: np.ndarray | None = None) -> np.ndarray:
    """The volume's array (or a same-shaped ``array``, e.g. a mask) as a (slice, row,
    column) view in display orientation; no copy. ``view[i]`` matches ``extract_slice(.., i)``."""
    _check_volume(volume, plane)
    return _orient(volume, plane, array)[0]


def informative_slices(
    volume: Image, plane: str, foreground: np.ndarray, min_fraction: float = 0.15, step_mm: float = 0.0
) -> tuple[list[int], int]:
    """Slices worth keeping, and how many were dropped for too little foreground.

    A slice is kept when its ``foreground`` area (a volume-shaped bool mask) is at least
    ``min_fraction`` of the fullest slice's: the tips of the head or the lung apices carry
    little to learn from. Of the kept slices one per ``step_mm`` is returned (neighbours
    1 mm apart are near copies); 0 keeps them all.
    """
    view = display_view(volume, plane, foreground)
    area = view.reshape(view.shape[0], -1).sum(axis=1)
    if area.max() == 0:
        return [], 0
    kept = [i for i in range(len(area)) if area[i] > 0 and area[i] >= min_fraction * area.max()]
    dropped = int((area > 0).sum()) - len(kept)
    thickness = volume.spacing[index_axes(volume.direction)[_DISPLAY[plane][0]]]
    step = max(1, round(step_mm / thickness)) if step_mm > 0 else 1
    return kept[::step], dropped


def body_extent(volume: Image, plane: str, foreground: np.ndarray) -> tuple[float, float] | None:
    """Positions (mm, along the plane's normal as in ``metadata["slice"]["position_mm"]``)
    of the first and last slices that hold any foreground; None when there is none."""
    view = display_view(volume, plane, foreground)
    with_body = np.flatnonzero(view.reshape(view.shape[0], -1).any(axis=1))
    if with_body.size == 0:
        return None
    first = extract_slice(volume, plane, int(with_body[0]))[0].metadata["slice"]["position_mm"]
    last = extract_slice(volume, plane, int(with_body[-1]))[0].metadata["slice"]["position_mm"]
    return first, last
