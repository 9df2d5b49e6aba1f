"""The detector's set: real images from the shared sources and the generators' outputs,
each through verify's decoding path and the transformations real files go through."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.data.manifest import load_manifest, read_unit_image
from radsynth.errors import InvalidInput
from radsynth.generate.detector_set import (
    REAL_SOURCES,
    DetectorSetSpec,
    build_detector_set,
    file_transform,
    subject_split,
)
from radsynth.io import Image
from radsynth.provenance.detector import spaced_slices
from tests.data.conftest import SHARED_DATA

needs_shared = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason="needs ../shared/data")


def _smooth(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:96, 0:80]
    return (1000 * np.exp(-((x - 40) ** 2 + (y - 48) ** 2) / 800) + rng.normal(0, 5, (96, 80))).astype(
        np.float32
    )


def test_file_transforms_are_seeded_and_really_change_pixels():
    a = _smooth()
    applied = [file_transform(a, np.random.default_rng(s)) for s in range(40)]
    names = {n for _, n in applied}
    assert "none" in names and any("jpeg2000" in n for n in names) and any("jpeg" in n for n in names)
    for out, name in applied:
        if name == "none":
            assert out is not None and np.array_equal(out, a)
        elif name in ("jpeg", "jpeg2000", "bits"):
            assert out.shape == a.shape and not np.array_equal(out, a)
    again = file_transform(a, np.random.default_rng(3))
    assert again[1] == applied[3][1] and np.array_equal(again[0], applied[3][0])


def test_a_volume_is_sampled_like_verify_samples_it_first_to_last():
    volume = Image(np.arange(40 * 4 * 4, dtype=np.float32).reshape(40, 4, 4))
    picks = spaced_slices(volume, 8)
    assert len(picks) == 8 and picks[0][0, 0] == 0 and picks[-1][0, 0] == volume.array[39, 0, 0]


def test_subject_split_is_stable_and_about_a_fifth():
    splits = [subject_split(f"patient{i}") for i in range(2000)]
    assert splits == [subject_split(f"patient{i}") for i in range(2000)]
    assert 0.17 < splits.count("test") / len(splits) < 0.23


def test_unknown_sources_and_generators_are_refused_in_one_line():
    with pytest.raises(InvalidInput, match="unknown detector-set sources or generators"):
        DetectorSetSpec(sources=("kermany", "mimic"))
    with pytest.raises(InvalidInput, match="generators"):
        DetectorSetSpec(generators=("midjourney",))


@needs_shared
def test_the_set_holds_each_real_source_and_generator_split_by_patient(tmp_path):
    spec = DetectorSetSpec(
        sources=("kermany", "aanlib-mr", "breastmnist", "figure1"),
        generators=("demo-vae", "translate-t1pd"),
        real_train=12,
        real_test=4,
        synthetic_train=6,
        synthetic_test=3,
    )
    manifest = build_detector_set(tmp_path, spec)
    records = load_manifest(manifest)
    origins = {r.labels["origin"] for r in records}
    assert origins == {"kermany", "aanlib-mr", "breastmnist", "figure1", "demo-vae", "translate-t1pd"}
    for origin in ("kermany", "aanlib-mr", "breastmnist"):
        mine = [r for r in records if r.labels["origin"] == origin]
        assert sum(r.split == "train" for r in mine) == 12 and sum(r.split == "test" for r in mine) == 4
        train = {r.subject for r in mine if r.split == "train"}
        assert not train & {r.subject for r in mine if r.split == "test"}  # no patient on both sides
    figure1 = [r for r in records if r.labels["origin"] == "figure1"]
    assert figure1 and all(r.split == "test" for r in figure1)  # research-only terms: never trained on
    assert REAL_SOURCES["figure1"].test_only
    synthetic = [r for r in records if r.labels["source"] == "synthetic"]
    assert {r.labels["generator"] for r in synthetic} == {"demo-vae", "translate-t1pd"}
    assert sum(r.split == "test" for r in synthetic) == 6
    pixels = read_unit_image(records[0].resolve(manifest))
    assert pixels.shape == (64, 64) and pixels.min() == 0.0 and pixels.max() == 1.0
    assert {r.labels["transform"] for r in records} - {"none"}  # some went through a file's journey
    assert build_detector_set(tmp_path, spec) == manifest  # reused, not redrawn


def test_a_missing_shared_folder_is_one_line(tmp_path):
    spec = DetectorSetSpec(root=str(tmp_path / "nowhere"), sources=("kermany",), generators=("demo-vae",))
    with pytest.raises(InvalidInput, match="shared data folder is missing"):
        build_detector_set(tmp_path / "set", spec)


def test_a_root_without_a_sources_folder_is_one_line_naming_it(tmp_path):
    """A user's --root holding only some of the data sets: the first one missing is named."""
    (tmp_path / "root" / "cxr_kermany_pneumonia_256").mkdir(parents=True)  # no labels.csv
    spec = DetectorSetSpec(root=str(tmp_path / "root"), sources=("kermany",), generators=("demo-vae",))
    with pytest.raises(InvalidInput, match="source kermany") as err:
        build_detector_set(tmp_path / "set", spec)
    assert "labels.csv" in str(err.value) and not (tmp_path / "set" / "manifest.jsonl").exists()
