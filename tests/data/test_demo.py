import json
import time

import numpy as np
import pytest

from radsynth.data.demo import build_demo
from radsynth.data.manifest import load_manifest
from radsynth.io import read_image


def test_build_is_fast_and_covers_every_installed_source(demo_build):
    corpus, seconds, folder, _ = demo_build
    assert not corpus.cached and seconds < 120  # target < 60 s on 2 cores; margin for busy CI
    summary = corpus.summary()
    assert summary["modality"]["MR"] >= 200  # MNI152, Colin27, Kmeans, ITK slices (+ pyradiomics)
    assert summary["modality"]["CT"] >= 150  # Cranium head CT in two windows (+ lung CT)
    assert set(summary["split"]) == {"train", "val", "test"}
    assert not list(folder.parent.glob(".demo-64.*"))  # no half-built temp folder left


def test_counts_per_modality_with_all_sources(demo_corpus, need_pyradiomics):
    summary = demo_corpus.summary()
    assert set(summary["anatomy"]) == {"brain", "breast", "chest", "head"}
    assert summary["finding"]["tumour"] >= 10 and summary["finding"]["lesion"] >= 5
    by_subject = {r.subject: r.split for r in demo_corpus.records}
    assert by_subject["pyradiomics-lung2"] == "test" and by_subject["pyradiomics-brain2"] == "test"
    assert by_subject["pyradiomics-lung1"] == "train" and by_subject["pyradiomics-brain1"] == "train"
    for modality in ("CT", "MR"):
        splits = {r.split for r in demo_corpus.records if r.modality == modality}
        assert {"train", "test"} <= splits
    windows = {r.window for r in demo_corpus.records if r.anatomy == "chest"}
    assert windows == {"lung", "soft_tissue"}


def _physical_side(image_path, label_path):
    """Side of the tumour from the files alone: mask centroid vs body centroid, LPS x."""
    image, label = read_image(image_path), read_image(label_path)

    def centroid_x(mask):
        zyx = np.argwhere(mask).mean(axis=0)
        return (image.affine @ np.append(zyx[::-1], 1.0))[0]

    return "left" if centroid_x(label.array > 0) > centroid_x(image.array > -500) else "right"


@pytest.mark.parametrize("case", ["lung1", "lung2"])
def test_lung_tumour_side_matches_the_mask(demo_build, need_pyradiomics, case):
    corpus, _, _, cache = demo_build
    data = cache / "sources" / "pyradiomics-3.0.1"
    expected = _physical_side(data / f"{case}_image.nrrd", data / f"{case}_label.nrrd")
    tumours = [
        r for r in corpus.records if r.subject == f"pyradiomics-{case}" and r.labels["finding"] == "tumour"
    ]
    assert tumours
    assert {r.labels["side"] for r in tumours} == {expected}
    assert all(f"tumour in the {expected} lung" in r.text for r in tumours)
    assert all(r.labels["size_mm"] > 0 and f"{round(r.labels['size_mm'])} mm" in r.text for r in tumours)


def test_every_record_is_a_readable_png_with_its_provenance(demo_corpus):
    for record in demo_corpus.records:
        image = read_image(demo_corpus.folder / record.path)
        assert image.array.shape == (64, 64) and image.array.dtype == np.uint16
        assert record.shape == (64, 64) and record.source and record.licence
        assert record.extra["source_file"]
    one = read_image(demo_corpus.folder / demo_corpus.records[0].path)
    assert one.metadata["png_text"]["Description"] == demo_corpus.records[0].text


def test_captions_state_only_known_facts(demo_corpus):
    for r in demo_corpus.records:
        assert r.text.startswith(r.plane)
        if r.modality == "CT":
            assert f"{r.window.replace('_', '-')} window" in r.text
        if r.labels["finding"] == "unknown":
            assert "lesion" not in r.text and "tumour" not in r.text
        if r.subject == "pyradiomics-breast1":
            assert "side" not in r.labels  # a crop without the midline: no side claimed


def test_second_call_is_cached_fast_and_identical(demo_build):
    corpus, _, folder, cache = demo_build
    start = time.perf_counter()
    again = build_demo(folder, size=64, cache=cache)
    assert again.cached and time.perf_counter() - start < 1.0
    assert again.summary() == corpus.summary()
    assert load_manifest(again.manifest) == corpus.records
    info = json.loads((folder / "corpus.json").read_text())
    assert info["key"]["size"] == 64 and info["key"]["sources"] == sorted(corpus.sources)
