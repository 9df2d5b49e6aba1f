"""Facts about one slice that a description may state: level, lesion presence, side, size.

Everything is computed in the patient frame (LPS mm) from the slice geometry that
:func:`radsynth.data.slices.extract_slice` records, never from array positions: LPS +x is
the patient's LEFT, so a lesion whose centroid has a larger x than the body's centroid is
on the left, whatever the file's storage order.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial.distance import pdist

from radsynth.io.image import Image


def pixel_positions(image: Image, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """LPS mm of pixel centres ``(rows[i], cols[i])`` of a slice from ``extract_slice``, (N, 3)."""
    sl = image.metadata["slice"]
    s_col, s_row = image.spacing
    origin = np.array(sl["origin_lps"])
    row_dir, col_dir = np.array(sl["row_direction"]), np.array(sl["column_direction"])
    return origin + np.outer(rows * s_row, row_dir) + np.outer(cols * s_col, col_dir)


def centroid_lps(volume: Image, mask: np.ndarray) -> np.ndarray:
    """Centroid (LPS mm) of the True voxels of ``mask`` (volume-shaped, numpy order)."""
    zyx = np.array(ndimage.center_of_mass(mask))
    xyz = np.append(zyx[::-1], 1.0)
    return (volume.affine @ xyz)[:3]


def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 8-connected region of a 2D mask (a lesion, not its stray specks)."""
    labels, n = ndimage.label(mask, structure=np.ones((3, 3)))
    if n <= 1:
        return mask.astype(bool)
    sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, n + 1))
    return labels == (1 + int(np.argmax(sizes)))


def max_diameter_mm(mask: np.ndarray, spacing: tuple[float, float]) -> float:
    """Largest in-plane extent of a 2D mask in mm (max Feret diameter, edge to edge).

    Distances between boundary pixel centres, plus one pixel (mean spacing) so a lesion
    one pixel wide measures one pixel, not zero. ``spacing`` is (column, row) in mm.
    """
    mask = mask.astype(bool)
    if not mask.any():
        return 0.0
    edge = mask & ~ndimage.binary_erosion(mask)
    rows, cols = np.nonzero(edge)
    points = np.column_stack([cols * spacing[0], rows * spacing[1]])
    longest = float(pdist(points).max()) if len(points) > 1 else 0.0
    return longest + float(np.mean(spacing))


def lesion_facts(image: Image, mask: np.ndarray, body_centroid: np.ndarray | None) -> dict:
    """Side and size of the largest lesion on a slice (native resolution).

    ``side`` compares the lesion centroid's LPS x with the body (or brain) centroid's:
    larger x is the patient's left. It is left out when no reference centroid is known
    (a crop that does not contain the midline).
    """
    lesion = largest_component(mask)
    facts: dict = {"size_mm": round(max_diameter_mm(lesion, image.spacing), 1)}
    if body_centroid is not None:
        rows, cols = np.nonzero(lesion)
        x = float(pixel_positions(image, rows, cols)[:, 0].mean())
        facts["side"] = "left" if x > body_centroid[0] else "right"
    return facts


def level_fraction(position: float, low: float, high: float) -> float:
    """Where ``position`` lies between ``low`` and ``high`` (mm), clipped to [0, 1]."""
    if high <= low:
        return 0.5
    return float(np.clip((position - low) / (high - low), 0.0, 1.0))


def level_words(plane: str, fraction: float, anatomy: str) -> str:
    """The level of an axial or coronal slice in words.

    ``fraction`` runs inferior -> superior (axial) or anterior -> posterior (coronal)
    over the extent of the body; the volume is cut in thirds.
    """
    third = min(2, int(fraction * 3))
    if plane == "axial" and anatomy == "chest":
        return f"{('lower', 'mid', 'upper')[third]} thorax"
    if plane == "axial":
        return f"{('lower', 'middle', 'upper')[third]} third of the {anatomy}"
    return f"{('anterior', 'middle', 'posterior')[third]} third of the {anatomy}"


def sagittal_words(offset_mm: float, half_width_mm: float) -> str:
    """Midline, paramedian or lateral, and on which side (``offset_mm`` is LPS x from the
    body centroid, + is the patient's left; ``half_width_mm`` is half the body's width)."""
    relative = abs(offset_mm) / half_width_mm if half_width_mm > 0 else 0.0
    if relative < 0.15:
        return "midline"
    side = "left" if offset_mm > 0 else "right"
    return f"{side} {'paramedian' if relative < 0.5 else 'lateral'}"
