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


TINY = {
    "denoise": {"mode": "denoise"},
    "sr": {"mode": "sr"},
    "mr2ct": {"mode": "cycle", "source": {"modality": "MR"}, "target": {"modality": "CT", "window": "bone"}},
    "t1pd": {"mode": "paired", "source": {"contrast": "T1-weighted"}, "target": {"contrast": "PD-weighted"}},
}
WHERE = {
    "mr2ct": {"anatomy": ["brain", "head"], "window": [None, "bone"]},
    "t1pd": {"source": ["Debian insighttoolkit5-examples"], "subject": ["colin27"]},
}


@pytest.fixture(scope="session")
def translators(tmp_path_factory) -> dict[str, str]:
    """{task: checkpoint folder}: each translation recipe trained 2 tiny steps, so the
    volume code is tested independently of how well the shipped models translate."""
    from radsynth.train.config import config_from_dict
    from radsynth.train.loop import train

    root = tmp_path_factory.mktemp("translators")
    folders = {}
    for name, options in TINY.items():
        recipe = {
            "task": "translate",
            "name": f"translate-{name}-tiny",
            "model": {"channels": [8, 16], "num_res_units": 0, "disc_channels": 8, "disc_layers": 2},
            "options": {**options, **({"crop": 32} if name == "t1pd" else {})},
            "data": {"manifest": "demo:64", "split": "train", "image_size": 64, "where": WHERE.get(name, {})},
            "steps": 2,
            "batch_size": 8,
            "checkpoint_every": 2,
            "seed": 0,
            "out": str(root / name),
        }
        folders[name] = str(train(config_from_dict(recipe)))
    folders["sr2"] = folders["sr4"] = folders["sr"]
    return folders
