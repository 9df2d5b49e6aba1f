"""Real volumes for translation tests: a block of the Colin27 T1 MR (Debian mricron-data)
and of the InVesalius head CT in HU (Debian invesalius-examples), placed on an oblique
grid so any geometry slip shows."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.data import sources
from radsynth.io import Image, read_image


def _oblique(array: np.ndarray, modality: str, units: str) -> Image:
    angle = np.deg2rad(20)
    direction = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    return Image(
        array.astype(np.float32),
        spacing=(0.9, 1.1, 2.5),
        origin=(12.5, -40.0, 7.0),
        direction=direction,
        modality=modality,
        units=units,
    )


@pytest.fixture(scope="session")
def mr_volume() -> Image:
    path = sources.MRICRON / "ch2.nii.gz"
    if not path.exists():
        pytest.skip("Debian mricron-data not installed")
    volume = read_image(path).array
    mid = np.array(volume.shape) // 2
    block = volume[mid[0] - 3 : mid[0] + 3, mid[1] - 48 : mid[1] + 48, mid[2] - 40 : mid[2] + 40]
    return _oblique(block, "MR", "")


@pytest.fixture(scope="session")
def ct_volume() -> Image:
    if not sources.INVESALIUS.exists():
        pytest.skip("Debian invesalius-examples not installed")
    loaded = sources._load_cranium()
    volume = loaded.image.array
    mid = volume.shape[0] // 2
    return _oblique(volume[mid - 2 : mid + 2, 64:160, 48:144], "CT", "HU")
