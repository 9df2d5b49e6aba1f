"""The chest X-ray benchmark's real-data rows on a tiny corpus built from ../shared/data
(a few Kermany and NIH images), read by the shipped cxr-128 encoder and reader: the
blurred row must score worse than the real one, and the JSON says how it was run."""

from __future__ import annotations

import json
import os

import pytest

from radsynth.data.cxr import build_cxr, default_root
from radsynth.data.cxr_sources import KERMANY, NIH
from radsynth.text.phi import scrub_phi

from .conftest import benchmark_module

# About 31 s of CPU (a tiny corpus build, torch and MONAI imports, MS-SSIM and bootstraps),
# measured on 2 AVX2 cores shared with a training run: slow tier to be safe.
pytestmark = pytest.mark.slow

PER_SOURCE = 40


@pytest.fixture(scope="module")
def cxr():
    return benchmark_module("cxr")


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    """The first images of Kermany and NIH with their label files, as a data root."""
    shared, root = default_root(), tmp_path_factory.mktemp("root")
    for source in (KERMANY, NIH):
        (root / source / "images").mkdir(parents=True)
        for path in (shared / source).iterdir():
            if path.is_file():
                os.symlink(path, root / source / path.name)
        for path in sorted((shared / source / "images").iterdir())[:PER_SOURCE]:
            os.symlink(path, root / source / "images" / path.name)
    return build_cxr(tmp_path_factory.mktemp("corpus"), scrub=scrub_phi, size=128, root=root).manifest


def test_blurred_real_scores_worse_than_real_and_the_json_says_how(cxr, manifest, tmp_path):
    out = tmp_path / "cxr.json"
    cxr.main(["--manifest", str(manifest), "--rows", "real", "--n", "24", "--no-radiomics",
              "--n-boot", "5", "--iu", "0", "--out", str(out)])  # fmt: skip
    results = json.loads(out.read_text())
    real, blurred = results["rows"]["real train"], results["rows"]["blurred real"]
    for metric in ("fid_domain", "kid_domain"):
        assert blurred["fidelity"][metric]["value"] > real["fidelity"][metric]["value"], metric
    assert real["privacy"]["share_synthetic_flagged"] == 1.0  # training images are their own copies
    assert set(real["adherence"]) == {"plane", "age_group", "sex", "finding"}
    ceiling = results["held_out"]["reader_accuracy"]
    assert ceiling["age_group"]["n"] == results["held_out"]["n"] >= 10  # every source states it
    assert ceiling["sex"]["n"] < results["held_out"]["n"]  # Kermany states no sex: not scored
    settings = results["settings"]
    assert settings["n"] == 24 and settings["seed"] == 0 and settings["rows"] == ["real"]
    assert settings["copy_threshold"] == cxr.CXR_COPY_THRESHOLD and len(settings["git_commit"]) == 40
    assert {"cpu", "native_bf16", "threads"} <= set(settings["machine"])
    assert results["targets"] == {}  # no generator row: nothing to hold against the targets
