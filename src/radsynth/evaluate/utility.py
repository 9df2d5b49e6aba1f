"""Downstream utility: does synthetic data help train a real task?

A small CNN (the attribute classifier's backbone with one head) learns one attribute
(default: finding, tumour/lesion present vs absent) from real training images only, from
synthetic images only (labelled by their prompts), and from both; each is tested on the
held-out real images (other subjects). ``within`` restricts all sets to one group: in the
demo corpus 22 of the 25 held-out positives are one chest CT while most negatives are
brain MR, so across groups any CT-vs-MR cue scores an AUROC far from 0.5 (even a
classifier trained on unrelated labels); within chest slices only the tumour counts.
The same three arms are repeated from an encoder pretrained on *another* task (the
domain encoder: modality, anatomy, plane and the intact-vs-scrambled pretext task, never
the finding), and a shuffled-label arm (real images, labels
permuted) shows what chance looks like on this test set.

Batches are class-balanced (every class equally often), because positives are rare in
the demo corpus (16 training slices with a finding). Accuracy, balanced accuracy and
AUROC come with 95 % bootstrap intervals over the test images; one training seed per arm,
so the intervals do not include the spread between training runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from radsynth.evaluate.features import DomainReader
from radsynth.evaluate.membership import auroc
from radsynth.evaluate.sets import ImageSet, require
from radsynth.evaluate.stats import bootstrap_ci, guarded
from radsynth.extras import optional_import
from radsynth.models.classifier import AttributeClassifier, ClassifierConfig
from radsynth.models.intensity import to_model_range
from radsynth.train.tasks.classifier import appearance_augment

ARMS = ("real", "synthetic", "real+synthetic", "shuffled_labels")
TRANSFER_ARMS = ("real", "synthetic", "real+synthetic")
MIN_PER_CLASS_TRAIN = 2
MIN_PER_CLASS_TEST = 5


@dataclass(frozen=True)
class UtilitySettings:
    """``attribute``: the task (an ``ImageSet.attributes`` key); ``within``: keep only
    images with these attribute values (e.g. ``{"anatomy": "chest"}``), so the task is not
    confounded with what else differs between subjects; ``steps`` x ``batch_size`` images
    per arm; ``lr`` Adam's learning rate; ``seed`` for weights, batches and augmentation;
    ``arms`` which arms to run (the transfer ones need an encoder)."""

    attribute: str = "finding"
    within: dict[str, str] = field(default_factory=dict)
    steps: int = 300
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    n_boot: int = 200
    arms: tuple[str, ...] = ARMS
    transfer_arms: tuple[str, ...] = TRANSFER_ARMS


@dataclass(frozen=True)
class Labelled:
    """Images (N, H, W) in [0, 1] with class indices (N,)."""

    images: np.ndarray
    labels: np.ndarray


def labelled(images: ImageSet, attribute: str, classes: tuple[str, ...]) -> Labelled:
    """The images of ``images`` whose ``attribute`` is one of ``classes``."""
    values = images.attributes.get(attribute, ())
    keep = [i for i, v in enumerate(values) if v in classes]
    return Labelled(images.images[keep], np.asarray([classes.index(values[i]) for i in keep], int))


def task_classes(train: ImageSet, test: ImageSet, attribute: str) -> tuple[str, ...]:
    """The classes of ``attribute`` present in both the real training and test sets."""

    def seen(images: ImageSet) -> set[str]:
        return {v for v in images.attributes.get(attribute, ()) if v is not None}

    return tuple(sorted(seen(train) & seen(test)))


def train_classifier(
    data: Labelled,
    n_classes: int,
    settings: UtilitySettings,
    encoder: dict[str, Any] | None = None,
) -> AttributeClassifier:
    """A fresh (or ``encoder``-initialised) CNN trained on ``data`` with class-balanced
    batches and the classifier task's appearance augmentation (images in [0, 1])."""
    config = ClassifierConfig(attributes={"task": tuple(str(i) for i in range(n_classes))})
    if encoder is not None:
        config = ClassifierConfig(channels=encoder["config"].channels, attributes=config.attributes)
    rng = np.random.default_rng(settings.seed)
    by_class = [np.flatnonzero(data.labels == c) for c in range(n_classes)]
    images = to_model_range(torch.from_numpy(data.images)[:, None])  # (N, 1, H, W) in [-1, 1]
    labels = torch.from_numpy(data.labels)
    with torch.random.fork_rng():  # initial weights, dropout and augmentation from the seed
        torch.manual_seed(settings.seed)
        net = AttributeClassifier(config)
        if encoder is not None:
            net.backbone.load_state_dict(encoder["backbone"])
        optimizer = torch.optim.Adam(net.parameters(), lr=settings.lr)
        net.train()
        for _ in range(settings.steps):
            classes = rng.integers(0, n_classes, settings.batch_size)
            index = np.asarray([rng.choice(by_class[c]) for c in classes])
            logits = net(appearance_augment(images[index]))["task"]
            loss = nn.functional.cross_entropy(logits, labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return net.eval()


@torch.inference_mode()
def predict(net: AttributeClassifier, images: np.ndarray, batch: int = 128) -> np.ndarray:
    """(N, classes) softmax probabilities for [0, 1] images (N, H, W)."""
    out = []
    for start in range(0, len(images), batch):
        x = to_model_range(torch.from_numpy(images[start : start + batch])[:, None])
        out.append(net(x)["task"].softmax(1))
    return torch.cat(out).double().numpy()


def scores(labels: np.ndarray, probs: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    """Accuracy, balanced accuracy and AUROC (one-vs-rest macro for > 2 classes) with
    paired bootstrap intervals over the test images."""
    predicted = probs.argmax(1)
    index = np.arange(len(labels))

    def accuracy(i):
        return float((predicted[i] == labels[i]).mean())

    def balanced(i):
        present = np.unique(labels[i])
        return float(np.mean([(predicted[i][labels[i] == c] == c).mean() for c in present]))

    def area(i):
        if probs.shape[1] == 2:
            return auroc(labels[i], probs[i, 1])
        roc_auc_score = optional_import("sklearn.metrics", "eval").roc_auc_score
        return float(roc_auc_score(labels[i], probs[i], multi_class="ovr", labels=range(probs.shape[1])))

    return {
        name: bootstrap_ci(fn, [index], n_boot=n_boot, seed=seed)
        for name, fn in (("accuracy", accuracy), ("balanced_accuracy", balanced), ("auroc", area))
    }


def utility(
    train: ImageSet,
    synthetic: ImageSet,
    test: ImageSet,
    settings: UtilitySettings = UtilitySettings(),
    encoder: dict[str, Any] | None = None,
    progress=None,
) -> dict[str, Any]:
    """Every arm's test scores; an arm without enough examples of each class says so.

    ``encoder``: ``{"config": ClassifierConfig, "backbone": state_dict}`` for the transfer
    arms (skipped without one). ``progress(arm)`` is called as each arm finishes.
    """
    train, synthetic, test = (_within(s, settings.within) for s in (train, synthetic, test))
    classes = task_classes(train, test, settings.attribute)
    require(len(classes), 2, f"utility ({settings.attribute}: classes in both training and test sets)")
    sets = {
        "real": labelled(train, settings.attribute, classes),
        "synthetic": labelled(synthetic, settings.attribute, classes),
    }
    sets["real+synthetic"] = _concat(sets["real"], sets["synthetic"])
    rng = np.random.default_rng(settings.seed)
    sets["shuffled_labels"] = Labelled(sets["real"].images, rng.permutation(sets["real"].labels))
    held_out = labelled(test, settings.attribute, classes)
    _require_classes(held_out, classes, MIN_PER_CLASS_TEST, "utility test set")
    out: dict[str, Any] = {
        "attribute": settings.attribute,
        "within": dict(settings.within),
        "classes": list(classes),
        "counts": {name: np.bincount(s.labels, minlength=len(classes)).tolist() for name, s in sets.items()},
        "test_counts": np.bincount(held_out.labels, minlength=len(classes)).tolist(),
        "settings": {"steps": settings.steps, "batch_size": settings.batch_size, "lr": settings.lr},
        "arms": {},
    }
    plan = [(arm, None) for arm in settings.arms]
    if encoder is not None:
        plan += [(arm, encoder) for arm in settings.transfer_arms]
    for arm, start in plan:
        name = arm if start is None else f"transfer:{arm}"
        out["arms"][name] = guarded(lambda a=arm, e=start: _arm(sets[a], held_out, classes, settings, e, a))
        if progress is not None:
            progress(name)
    return out


def _arm(
    data: Labelled,
    held_out: Labelled,
    classes: tuple[str, ...],
    settings: UtilitySettings,
    encoder: dict[str, Any] | None,
    name: str,
) -> dict[str, Any]:
    """Train one arm's CNN and score it on the held-out images."""
    _require_classes(data, classes, MIN_PER_CLASS_TRAIN, f"utility arm {name}")
    net = train_classifier(data, len(classes), settings, encoder)
    return {
        **scores(held_out.labels, predict(net, held_out.images), settings.n_boot, settings.seed),
        "n_train": len(data.labels),
    }


def _require_classes(data: Labelled, classes: tuple[str, ...], need: int, what: str) -> None:
    counts = (
        np.bincount(data.labels, minlength=len(classes)) if len(data.labels) else np.zeros(len(classes), int)
    )
    for name, count in zip(classes, counts, strict=True):
        require(int(count), need, f"{what} (class {name})")


def _within(images: ImageSet, within: dict[str, str]) -> ImageSet:
    """The images whose attributes match every ``within`` value."""
    keep = np.ones(len(images), bool)
    for name, value in within.items():
        keep &= np.asarray([v == value for v in images.attributes.get(name, (None,) * len(images))], bool)
    return images.subset(keep)


def _concat(a: Labelled, b: Labelled) -> Labelled:
    if not len(b.labels):
        return a
    return Labelled(np.concatenate([a.images, b.images]), np.concatenate([a.labels, b.labels]))


def encoder_start(reader: DomainReader) -> dict[str, Any]:
    """The transfer arms' starting point: a copy of the domain encoder's backbone."""
    backbone = {k: v.detach().clone() for k, v in reader.net.backbone.state_dict().items()}
    return {"config": reader.config, "backbone": backbone, "model_id": reader.card.model_id}
