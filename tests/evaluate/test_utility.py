"""The utility CNN on known cases: a task with a visible signal is learned, the same
images with shuffled labels sit at chance, and an arm without a class says why; the study's
regimes are nested fractions of the subjects, its arms train on what they say, and the
paired gain over real only has an interval that excludes 0 when the difference is real."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.evaluate.features import DomainReader
from radsynth.evaluate.sets import ImageSet
from radsynth.evaluate.utility import (
    STUDY_ARMS,
    UtilitySettings,
    encoder_start,
    regime_sets,
    scores,
    sensitivity_at_specificity,
    utility,
    utility_study,
)
from radsynth.models.registry import shipped

slow = pytest.mark.slow  # trains the utility CNN


def _marked(images: np.ndarray, seed: int, name: str) -> ImageSet:
    """Real slices; half carry a 16-pixel checkerboard (2-pixel cells) at a random place
    ("present"): a finding no real slice shows by accident."""
    rng = np.random.default_rng(seed)
    images = images.copy()
    present = rng.random(len(images)) < 0.5
    board = ((np.arange(16)[:, None] // 2 + np.arange(16)[None] // 2) % 2).astype(np.float32)
    for i in np.flatnonzero(present):
        y, x = rng.integers(8, 40, 2)
        images[i, y : y + 16, x : x + 16] = board
    finding = tuple("present" if p else "absent" for p in present)
    n = len(images)
    attributes = {"finding": finding, "modality": ("MR",) * n}
    return ImageSet(name, images, ("",) * n, ("MR",) * n, attributes, tuple(map(str, range(n))))


@pytest.fixture(scope="module")
def marked(training, held_out):
    return _marked(training.images, 0, "train"), _marked(held_out.images, 1, "real")


@slow
def test_a_visible_finding_is_learned_and_shuffled_labels_sit_at_chance(marked):
    train, test = marked
    settings = UtilitySettings(steps=60, batch_size=16, arms=("real", "shuffled_labels"), n_boot=50)
    report = utility(train, train.subset([]), test, settings)
    assert report["classes"] == ["absent", "present"]
    assert report["arms"]["real"]["auroc"]["value"] > 0.85
    shuffled = report["arms"]["shuffled_labels"]["auroc"]
    assert abs(shuffled["value"] - 0.5) < 0.2
    assert shuffled["low"] < 0.5 + 0.2 and shuffled["high"] > 0.5 - 0.2


@slow
def test_an_arm_without_examples_of_a_class_reports_why_and_transfer_loads_the_encoder(marked):
    train, test = marked
    settings = UtilitySettings(steps=3, batch_size=8, arms=("synthetic",), transfer_arms=("real",), n_boot=5)
    encoder = encoder_start(DomainReader(shipped("encoder")))
    report = utility(train, train.subset([]), test, settings, encoder=encoder)
    assert "not enough samples: need >= 2" in report["arms"]["synthetic"]["skipped"]
    assert set(report["arms"]["transfer:real"]) >= {"accuracy", "balanced_accuracy", "auroc", "n_train"}


@slow
def test_the_transfer_arms_start_from_the_shipped_encoders_trained_backbone(marked):
    """The pretrained weights, not a fresh initialisation: a "transfer" from random weights
    would pass every figure-shaped check above."""
    import torch
    from safetensors.torch import load_file

    from radsynth.evaluate.utility import Labelled, train_classifier

    weights = load_file(str(shipped("encoder") / "model.safetensors"))
    start = encoder_start(DomainReader(shipped("encoder")))
    assert len(start["backbone"]) > 0
    for name, tensor in start["backbone"].items():
        torch.testing.assert_close(tensor, weights[f"classifier.backbone.{name}"], rtol=0, atol=0)
    train, _ = marked
    labels = np.asarray([f == "present" for f in train.attributes["finding"]], np.int64)
    settings = UtilitySettings(steps=1, batch_size=2, lr=1e-12)
    net = train_classifier(Labelled(train.images, labels), 2, settings, encoder=start)
    fresh = train_classifier(Labelled(train.images, labels), 2, settings)
    weight = "0.conv.weight"
    torch.testing.assert_close(net.backbone.state_dict()[weight], start["backbone"][weight])
    assert not torch.allclose(fresh.backbone.state_dict()[weight], start["backbone"][weight])


@slow
def test_within_keeps_one_group_and_an_empty_group_says_so(marked):
    from radsynth.errors import NotEnoughSamples

    train, test = marked
    with pytest.raises(NotEnoughSamples, match="classes in both training and test sets"):
        utility(train, train.subset([]), test, UtilitySettings(within={"modality": "CT"}, steps=1))
    report = utility(
        train,
        train.subset([]),
        test,
        UtilitySettings(within={"modality": "MR"}, steps=1, arms=("real",), n_boot=2),
    )
    assert report["within"] == {"modality": "MR"} and sum(report["test_counts"]) == len(test)


def _groups(n: int, per_subject: int, positive_every: int) -> ImageSet:
    """``n`` blank images, ``per_subject`` per subject; every ``positive_every``-th subject
    has the finding."""
    subjects = [f"s{i // per_subject}" for i in range(n)]
    finding = tuple("present" if int(s[1:]) % positive_every == 0 else "absent" for s in subjects)
    return ImageSet(
        "t", np.zeros((n, 4, 4), np.float32), ("",) * n, ("MR",) * n, {"finding": finding}, tuple(subjects)
    )


def test_regimes_are_nested_fractions_of_subjects_kept_whole_and_per_class():
    images = _groups(400, 2, 4)  # 200 subjects, 50 with the finding
    regimes = regime_sets(images, (1.0, 0.2, 0.1), "finding", seed=3)
    subjects = {name: set(s.groups) for name, s in regimes.items()}
    assert [len(subjects[n]) for n in ("100 %", "20 %", "10 %")] == [200, 40, 20]
    assert subjects["10 %"] < subjects["20 %"] < subjects["100 %"]
    for subset in regimes.values():  # every image of a chosen subject, the class mix kept
        assert len(subset) == 2 * len(set(subset.groups))
        assert subset.attributes["finding"].count("present") * 4 == len(subset)
    other = regime_sets(images, (0.1,), "finding", seed=4)["10 %"]
    assert set(other.groups) != subjects["10 %"]


def test_sensitivity_at_90_specificity_on_known_scores():
    labels = np.array([0] * 10 + [1] * 4)
    positive = np.array(list(range(10)) + [9.5, 8.5, 3, 20.0])  # 90th percentile of negatives: 8.1
    assert sensitivity_at_specificity(labels, positive) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        sensitivity_at_specificity(labels[:10], positive[:10])


def test_the_paired_gain_is_zero_for_the_same_runs_and_above_zero_for_a_better_arm():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    noisy = [np.stack([1 - p, p], 1) for p in (rng.random(200) for _ in range(3))]  # chance
    good = [
        np.stack([1 - p, p], 1) for p in (np.clip(labels + rng.normal(0, 0.6, 200), 0, 1) for _ in range(3))
    ]
    same = scores(labels, noisy, n_boot=200, seed=0, baselines={"real": noisy})
    assert same["vs_real"]["auroc"] == {"value": 0.0, "low": 0.0, "high": 0.0}
    better = scores(labels, good, n_boot=200, seed=0, baselines={"real": noisy})
    assert better["vs_real"]["auroc"]["low"] > 0.1
    assert better["auroc"]["value"] == pytest.approx(np.mean(better["per_seed"]["auroc"]))
    assert len(better["per_seed"]["sensitivity_at_90_specificity"]) == 3


@slow
def test_a_study_runs_every_arm_in_every_regime_on_what_each_arm_says(marked):
    train, test = marked
    synthetic = train.subset(np.r_[np.arange(len(train))[::-1], np.arange(len(train))])  # twice as many
    settings = UtilitySettings(
        steps=30, batch_size=16, seeds=2, n_boot=50, augment=False, synthetic_per_real=1.0, arms=STUDY_ARMS
    )
    regimes = regime_sets(train, (1.0, 0.5), "finding")
    study = utility_study(
        {n: (r, synthetic) for n, r in regimes.items()}, test, settings, external={"other": test}
    )
    assert list(study["regimes"]) == ["100 %", "50 %"]
    for name, report in study["regimes"].items():
        real = len(regimes[name])
        arms = report["arms"]
        assert list(arms) == list(STUDY_ARMS) and report["subjects"] == len(set(regimes[name].groups))
        counts = {arm: sum(c) for arm, c in report["counts"].items()}
        assert counts["real"] == counts["real+augmentation"] == counts["shuffled_labels"] == real
        assert counts["real+synthetic"] == counts["real+duplicates"] == 2 * real
        assert counts["real+synthetic x2"] == 3 * real and counts["synthetic"] == real
        assert arms["pretrain:synthetic"]["n_train"] == real + len(synthetic)
        assert "vs_real" not in arms["real"] and len(arms["real"]["per_seed"]["auroc"]) == 2
        assert "vs_duplicates" in arms["real+synthetic"] and "vs_duplicates" not in arms["real+augmentation"]
        assert arms["real"]["auroc"]["value"] > 0.85  # the checkerboard is learned
        assert arms["real"]["external"]["other"]["auroc"] == arms["real"]["auroc"]  # same images
        # chance is worse than learning it, and the paired interval says so
        assert arms["shuffled_labels"]["vs_real"]["auroc"]["high"] < 0
