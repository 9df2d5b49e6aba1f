from dataclasses import replace

import pytest

from radsynth.data.splits import assign_splits, split_leaks, split_records
from radsynth.errors import InvalidInput


def _groups():
    # Group sizes as in a small real corpus: 2 chest CTs, 1 head CT, 5 brain MRs, 1 breast MR.
    groups = {"lung1": "CT/chest", "lung2": "CT/chest", "cranium": "CT/head", "breast1": "MR/breast"}
    groups.update({s: "MR/brain" for s in ("brain1", "brain2", "mni", "colin", "kmeans")})
    return groups


def test_deterministic_and_stratified():
    first = assign_splits(_groups(), seed=3)
    assert first == assign_splits(_groups(), seed=3)
    assert {first["lung1"], first["lung2"]} == {"train", "test"}  # 2 subjects: one each
    brain = [first[s] for s in ("brain1", "brain2", "mni", "colin", "kmeans")]
    assert brain.count("test") == 1 and brain.count("val") == 1 and brain.count("train") == 3
    assert first["cranium"] == "train" and first["breast1"] == "train"  # alone: train
    seeds = {tuple(sorted(assign_splits(_groups(), seed=s).items())) for s in range(10)}
    assert len(seeds) > 1  # the seed matters


def test_adding_a_group_does_not_reshuffle_the_others():
    before = assign_splits(_groups(), seed=1)
    after = assign_splits({**_groups(), "x1": "US/liver", "x2": "US/liver"}, seed=1)
    assert all(after[s] == before[s] for s in before)


def test_pinned_subjects_count_towards_the_quota():
    splits = assign_splits(_groups(), seed=0, fixed={"lung2": "test", "brain2": "test", "brain1": "train"})
    assert splits["lung2"] == "test" and splits["lung1"] == "train"
    brain = [splits[s] for s in ("brain1", "brain2", "mni", "colin", "kmeans")]
    assert brain.count("test") == 1 and splits["brain1"] == "train"


def test_records_never_leak(demo_corpus):
    records = demo_corpus.records
    assert split_leaks(records) == {}
    resplit = split_records(records, seed=7)
    assert split_leaks(resplit) == {}
    leaked = records[:1] + [replace(r, split="test" if r.split != "test" else "train") for r in records[1:2]]
    leaked[1] = replace(leaked[1], subject=leaked[0].subject)
    assert list(split_leaks(leaked)) == [leaked[0].subject]


def test_bad_fractions_are_named():
    with pytest.raises(InvalidInput, match="split fractions"):
        assign_splits(_groups(), fractions=(0.5, 0.5, 0.5))
