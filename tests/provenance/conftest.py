"""Fixtures for provenance: real demo slices (the corpus is built once, then cached)."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.data.manifest import load_manifest, read_unit_image


@pytest.fixture(scope="session")
def demo_manifest():
    from radsynth.data.demo import build_demo

    return build_demo(size=64).folder / "manifest.jsonl"


@pytest.fixture(scope="session")
def real_slices(demo_manifest):
    """40 real demo slices, float32 in [0, 1], spread over every source."""
    records = load_manifest(demo_manifest)
    picks = np.linspace(0, len(records) - 1, 40).astype(int)
    return [read_unit_image(records[i].resolve(demo_manifest)) for i in picks]
