"""The utility CNN on known cases: a task with a visible signal is learned, the same
images with shuffled labels sit at chance, and an arm without a class says why."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.evaluate.features import DomainReader
from radsynth.evaluate.sets import ImageSet
from radsynth.evaluate.utility import UtilitySettings, encoder_start, utility
from radsynth.models.registry import shipped

pytestmark = pytest.mark.slow  # trains the utility CNN


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


def test_a_visible_finding_is_learned_and_shuffled_labels_sit_at_chance(marked):
    train, test = marked
    settings = UtilitySettings(steps=60, batch_size=16, arms=("real", "shuffled_labels"), n_boot=50)
    report = utility(train, train.subset([]), test, settings)
    assert report["classes"] == ["absent", "present"]
    assert report["arms"]["real"]["auroc"]["value"] > 0.85
    shuffled = report["arms"]["shuffled_labels"]["auroc"]
    assert abs(shuffled["value"] - 0.5) < 0.2
    assert shuffled["low"] < 0.5 + 0.2 and shuffled["high"] > 0.5 - 0.2


def test_an_arm_without_examples_of_a_class_reports_why_and_transfer_loads_the_encoder(marked):
    train, test = marked
    settings = UtilitySettings(steps=3, batch_size=8, arms=("synthetic",), transfer_arms=("real",), n_boot=5)
    encoder = encoder_start(DomainReader(shipped("encoder")))
    report = utility(train, train.subset([]), test, settings, encoder=encoder)
    assert "not enough samples: need >= 2" in report["arms"]["synthetic"]["skipped"]
    assert set(report["arms"]["transfer:real"]) >= {"accuracy", "balanced_accuracy", "auroc", "n_train"}


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
