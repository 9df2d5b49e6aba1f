"""The one image type: pixels that never travel without their geometry.

Conventions (the ITK / SimpleITK ones, so geometry moves losslessly between DICOM,
NIfTI, NRRD and MHA):

- ``array`` is in numpy order: ``(z, y, x)`` for a volume, ``(y, x)`` for a 2D image,
  with a trailing axis of 3 when ``rgb`` is True. ``array[k]`` is the k-th slice.
- ``spacing``, ``origin`` and ``direction`` are in physical ``(x, y[, z])`` order, in mm,
  in the DICOM patient frame (LPS: +x to the patient's left, +y posterior, +z head).
- ``direction`` columns are the unit vectors of the x, y (, z) index axes in LPS.
- ``modality`` is the DICOM code (CT, MR, CR, DX, US, PT, OT); ``units`` says what the
  numbers mean ("HU" for CT after rescale, "" when arbitrary).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from radsynth.errors import GeometryMismatch

MODALITIES = ("CT", "MR", "CR", "DX", "US", "PT", "NM", "MG", "XA", "OT")


@dataclass(frozen=True, eq=False)
class Image:
    """A 2D image or 3D volume with its geometry, modality and free-form metadata."""

    array: np.ndarray
    spacing: tuple[float, ...] = ()
    origin: tuple[float, ...] = ()
    direction: np.ndarray | None = None
    modality: str = "OT"
    units: str = ""
    rgb: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rgb and self.array.shape[-1] != 3:
            raise GeometryMismatch(f"an RGB image needs a last axis of 3, got shape {self.array.shape}")
        n = self.spatial_ndim
        if n not in (2, 3):
            raise GeometryMismatch(f"array of shape {self.array.shape} is neither 2D nor 3D")
        # Fill defaults (unit spacing, zero origin, identity direction) so every Image
        # has complete geometry; frozen dataclasses need object.__setattr__ for this.
        spacing = tuple(float(s) for s in self.spacing) or (1.0,) * n
        origin = tuple(float(o) for o in self.origin) or (0.0,) * n
        direction = np.eye(n) if self.direction is None else np.asarray(self.direction, float)
        if len(spacing) != n or len(origin) != n or direction.shape != (n, n):
            raise GeometryMismatch(
                f"geometry for a {n}D image needs {n} spacings, {n} origin values and a "
                f"{n}x{n} direction; got {len(spacing)}, {len(origin)}, {direction.shape}"
            )
        if any(s <= 0 or not np.isfinite(s) for s in spacing):
            raise GeometryMismatch(f"spacing must be positive and finite, got {spacing}")
        object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "direction", direction)
        object.__setattr__(self, "modality", (self.modality or "OT").upper())

    @property
    def spatial_ndim(self) -> int:
        """2 or 3: the number of spatial axes (an RGB channel axis is not one)."""
        return self.array.ndim - (1 if self.rgb else 0)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Shape in numpy order, without the RGB axis."""
        return self.array.shape[: self.spatial_ndim]

    @property
    def affine(self) -> np.ndarray:
        """4x4 (or 3x3 for 2D) index-to-LPS matrix for (x, y[, z]) voxel indices, in mm."""
        n = self.spatial_ndim
        a = np.eye(n + 1)
        a[:n, :n] = self.direction @ np.diag(self.spacing)
        a[:n, n] = self.origin
        return a

    def with_array(self, array: np.ndarray, **changes: Any) -> Image:
        """The same geometry around new pixels (same spatial shape required)."""
        if array.shape[: self.spatial_ndim] != self.spatial_shape:
            raise GeometryMismatch(
                f"new pixels of shape {array.shape} do not fit geometry of shape {self.spatial_shape}"
            )
        return replace(self, array=array, **changes)

    def same_geometry(self, other: Image, atol: float = 1e-4) -> bool:
        """True when shape, spacing, origin and direction agree (within ``atol`` mm)."""
        return (
            self.spatial_shape == other.spatial_shape
            and np.allclose(self.spacing, other.spacing, atol=atol)
            and np.allclose(self.origin, other.origin, atol=atol)
            and np.allclose(self.direction, other.direction, atol=atol)
        )


def unit_spacing_assumed(image: Image) -> bool:
    """True when readers filled in 1 mm pixels because the source gave no spacing.

    Readers record such guesses in ``metadata["geometry_assumed"]`` (what -> why); writers
    then leave the spacing out rather than state a made-up one as fact.
    """
    assumed = image.metadata.get("geometry_assumed") or {}
    return str(assumed.get("pixel_spacing", "")).startswith("unit")
