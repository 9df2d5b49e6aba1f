"""Real demo slices for evaluation tests: the demo corpus (built from packaged data on
first use, then cached), a few images per split, never invented pixels."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.evaluate.sets import ImageSet, load_set


@pytest.fixture(scope="session")
def demo_manifest():
    from radsynth.data.demo import build_demo

    return build_demo(size=64).folder / "manifest.jsonl"


@pytest.fixture(scope="session")
def copy_manifest(demo_manifest):
    """``copy(folder, records)``: a manifest of demo ``records`` with their PNGs copied
    into ``folder`` (to alter or subset them without touching the corpus)."""
    from shutil import copyfile

    from radsynth.data.manifest import write_manifest

    def copy(folder, records):
        folder.mkdir(parents=True, exist_ok=True)
        for r in records:
            (folder / r.path).parent.mkdir(parents=True, exist_ok=True)
            copyfile(r.resolve(demo_manifest), folder / r.path)
        return write_manifest(records, folder / "manifest.jsonl")

    return copy


def spread(images: ImageSet, n: int) -> ImageSet:
    """``n`` images evenly spread over ``images`` (every subject and level represented)."""
    return images.subset(np.linspace(0, len(images) - 1, n).round().astype(int))


@pytest.fixture(scope="session")
def held_out(demo_manifest) -> ImageSet:
    return spread(load_set(demo_manifest, "real", ("val", "test")), 48)


@pytest.fixture(scope="session")
def training(demo_manifest) -> ImageSet:
    return spread(load_set(demo_manifest, "train", ("train",)), 64)
