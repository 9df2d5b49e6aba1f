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


@pytest.fixture(scope="session")
def held_out_records(demo_manifest):
    """Demo records of the val and test subjects: never in the shipped detector's training set."""
    return [r for r in load_manifest(demo_manifest) if r.split in ("val", "test")]


@pytest.fixture(scope="session")
def held_out_slices(demo_manifest, held_out_records):
    """40 real slices of held-out subjects, spread over them, float32 in [0, 1]."""
    picks = np.linspace(0, len(held_out_records) - 1, 40).astype(int)
    return [read_unit_image(held_out_records[i].resolve(demo_manifest)) for i in picks]


@pytest.fixture(scope="session")
def held_out_captions(held_out_records):
    """Three captions of held-out subjects (CT and MR), as a prompt set for the generators."""
    captions = sorted({r.text for r in held_out_records})
    return [captions[i] for i in np.linspace(0, len(captions) - 1, 3).astype(int)]
