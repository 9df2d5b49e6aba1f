"""Fixtures for the data layer: real files from packages and the shared data folder."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from radsynth.data import sources

REPO = Path(__file__).resolve().parents[2]
# /work/shared/data here, ../shared/data relative to the repository root in CI.
SHARED_DATA = (REPO / ".." / "shared" / "data").resolve()
MR_SERIES = SHARED_DATA / "dicom_samples" / "series_mr_trio_gre_field_mapping_magnitude"
CH2 = sources.MRICRON / "ch2.nii.gz"
KMEANS = sources.ITK_DATA / "KmeansTest_T1UCharRaw.nii.gz"
BRAIN_T1_PNG = sources.ITK_DATA / "BrainT1Slice.png"


def need(path: Path, why: str = "") -> Path:
    """Skip (with the reason) when a real fixture file is not installed here."""
    if not path.exists():
        pytest.skip(f"{path} not available{': ' + why if why else ''}")
    return path


@pytest.fixture(scope="session")
def mr_series() -> Path:
    return need(MR_SERIES, "shared data folder (../shared/data) with the 36-file MR series")


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory):
    """The full demo corpus, built once per session from the real sources in a tmp folder
    (its tests are slow: tests/conftest.py).

    Yields (corpus, seconds, folder, cache). The pyradiomics archive is downloaded by pip
    into a fresh cache, as a user's first run would.
    """
    from radsynth.data.demo import build_demo

    root = tmp_path_factory.mktemp("demo")
    lines: list[str] = []
    start = time.perf_counter()
    corpus = build_demo(root / "demo-64", size=64, cache=root / "cache", log=lines.append)
    seconds = time.perf_counter() - start
    yield corpus, seconds, root / "demo-64", root / "cache"
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def demo_corpus(demo_build):
    return demo_build[0]


@pytest.fixture
def need_pyradiomics(demo_corpus):
    """Fails, never skips, without the pyradiomics sources: set-up makes them available
    (PyPI sdist), so a missing lung2/brain2 is a broken build whose split checks must show."""
    if not any(s.startswith("pyradiomics-") for s in demo_corpus.sources):
        pytest.fail(f"pyradiomics sources unavailable: {demo_corpus.warnings}")


@pytest.fixture(scope="session")
def ch2() -> Path:
    return need(CH2, "Debian mricron-data")


@pytest.fixture(scope="session")
def kmeans() -> Path:
    return need(KMEANS, "Debian insighttoolkit5-examples")


@pytest.fixture(scope="session")
def brain_t1_png() -> Path:
    return need(BRAIN_T1_PNG, "Debian insighttoolkit5-examples")
