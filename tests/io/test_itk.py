"""NRRD and MetaImage through SimpleITK, including detached headers written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from radsynth.errors import UnreadableImage
from radsynth.io import read_image, read_itk, write_image

from .io_helpers import ITK_DATA, require


@pytest.mark.parametrize(
    "name",
    [
        "BrainProtonDensity3Slices.mha",  # 3D
        "BrainProtonDensitySliceBorder20DirectionPlus30.mhd",  # 2D, rotated 30 degrees
        "BrainT1SliceBorder20DirectionPlus30.nhdr",  # 2D NRRD with detached gzip data
    ],
)
@pytest.mark.parametrize("suffix", [".mha", ".nrrd", ".mhd", ".nhdr"])
def test_round_trip(name: str, suffix: str, tmp_path: Path) -> None:
    image = read_image(require(ITK_DATA / name))
    out = write_image(image, tmp_path / f"copy{suffix}")
    back = read_itk(out)
    np.testing.assert_array_equal(back.array, image.array)
    assert back.same_geometry(image, atol=1e-9)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[0] == f"copy{suffix}" or f"copy{suffix}" in names
    assert not any(n.startswith(".") for n in names), names  # no temporary left behind
    assert len(names) == (1 if suffix in (".mha", ".nrrd") else 2)


def test_known_geometry_of_rotated_slice() -> None:
    image = read_image(require(ITK_DATA / "BrainProtonDensitySliceBorder20DirectionPlus30.mhd"))
    angle = np.deg2rad(30)
    expected = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    np.testing.assert_allclose(image.direction, expected, atol=1e-6)
    assert image.spatial_shape == (257, 221)


def test_complex_pixels_are_refused() -> None:
    """ITK's complex brain slice reads as 2-component vectors: neither scalar nor RGB."""
    path = require(ITK_DATA / "itkBrainSliceComplex.mha")
    with pytest.raises(UnreadableImage, match="2 components per pixel"):
        read_image(path)
