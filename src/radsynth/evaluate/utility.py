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
AUROC (and, for two classes, sensitivity at 90 % specificity) come with 95 % bootstrap
intervals over the test images; with several training seeds a figure is the mean over
seeds, and its interval covers the test images, not the spread between runs (each seed's
value is kept beside it).

A study (:func:`utility_study`) repeats this over scarce-data regimes (a fraction of the
training patients, e.g. 100 %, 25 %, 10 %) with the arms the literature compares: real
plus synthetic at 1x and 2x the real count, real plus count-matched duplicates of real
images (the control under which Pink et al. 2026 found synthetic augmentation gave
nothing), real with classical augmentation, synthetic only, and pretraining on synthetic
then fine-tuning on real (RoentGen-v2's winner). Several training seeds per arm; every arm
is compared with real-only on the same test images (a paired bootstrap of the difference),
so the gain has its own interval.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from radsynth.data.splits import fraction_of_subjects
from radsynth.errors import InvalidInput
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
STUDY_ARMS = (  # the controls first: every later arm is compared with them
    "real",
    "real+duplicates",
    "real+synthetic",
    "real+synthetic x2",
    "real+augmentation",
    "synthetic",
    "pretrain:synthetic",
    "shuffled_labels",
)
KNOWN_ARMS = frozenset(ARMS + STUDY_ARMS)
MIN_PER_CLASS_TRAIN = 2
MIN_PER_CLASS_TEST = 5
SPECIFICITY = 0.9


@dataclass(frozen=True)
class UtilitySettings:
    """``attribute``: the task (an ``ImageSet.attributes`` key); ``within``: keep only
    images with these attribute values (e.g. ``{"anatomy": "chest"}``), so the task is not
    confounded with what else differs between subjects; ``steps`` x ``batch_size`` images
    per arm (a pretrained arm gets ``steps`` more on synthetic first); ``lr`` Adam's
    learning rate; ``seed`` for weights, batches and augmentation, ``seeds`` training runs
    per arm (seed, seed + 1, ...); ``augment``: every arm trains with the appearance
    augmentation (off, only ``real+augmentation`` has it: classical augmentation is then
    an arm of its own); ``synthetic_per_real``: synthetic images per real training image
    in ``real+synthetic`` and ``synthetic`` (class-balanced; ``x2`` arms twice that), None
    for every synthetic image; ``arms`` which arms to run (the transfer ones need an
    encoder)."""

    attribute: str = "finding"
    within: dict[str, str] = field(default_factory=dict)
    steps: int = 300
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    seeds: int = 1
    n_boot: int = 200
    augment: bool = True
    synthetic_per_real: float | None = None
    arms: tuple[str, ...] = ARMS
    transfer_arms: tuple[str, ...] = TRANSFER_ARMS

    def __post_init__(self) -> None:
        unknown = sorted(set(self.arms) - KNOWN_ARMS)
        if unknown:
            raise InvalidInput(f"unknown utility arms {unknown}; known: {', '.join(sorted(KNOWN_ARMS))}")


@dataclass(frozen=True)
class Labelled:
    """Images (N, H, W) in [0, 1] with class indices (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class ArmData:
    """What one arm trains on: ``data`` (after ``pretrain`` when given), with or without
    the appearance augmentation."""

    data: Labelled
    augment: bool
    pretrain: Labelled | None = None


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


def regime_sets(
    train: ImageSet, fractions: tuple[float, ...], attribute: str, seed: int = 0
) -> dict[str, ImageSet]:
    """``{"25 %": subset}``: each fraction of the training subjects (``groups``), drawn
    per class of ``attribute`` and nested (see ``fraction_of_subjects``)."""
    seen: dict[str, Counter] = {}
    for group, value in zip(train.groups, train.attributes.get(attribute, (None,) * len(train)), strict=True):
        seen.setdefault(group, Counter())[str(value)] += 1
    strata = {group: counts.most_common(1)[0][0] for group, counts in seen.items()}
    out = {}
    for fraction in fractions:
        keep = fraction_of_subjects(strata, fraction, seed)
        out[regime_name(fraction)] = train.subset(np.asarray([g in keep for g in train.groups], bool))
    return out


def regime_name(fraction: float) -> str:
    """``0.1`` -> ``"10 %"``."""
    return f"{fraction * 100:g} %"


def train_classifier(
    data: Labelled,
    n_classes: int,
    settings: UtilitySettings,
    encoder: dict[str, Any] | None = None,
    augment: bool | None = None,
    start: AttributeClassifier | None = None,
) -> AttributeClassifier:
    """A fresh (or ``encoder``-initialised, or ``start``-continued) CNN trained on ``data``
    with class-balanced batches, with the appearance augmentation when ``augment`` (default:
    ``settings.augment``); images in [0, 1]."""
    augment = settings.augment if augment is None else augment
    config = ClassifierConfig(attributes={"task": tuple(str(i) for i in range(n_classes))})
    if encoder is not None:
        config = ClassifierConfig(channels=encoder["config"].channels, attributes=config.attributes)
    rng = np.random.default_rng(settings.seed)
    by_class = [np.flatnonzero(data.labels == c) for c in range(n_classes)]
    images = to_model_range(torch.from_numpy(data.images)[:, None])  # (N, 1, H, W) in [-1, 1]
    labels = torch.from_numpy(data.labels)
    with torch.random.fork_rng():  # initial weights, dropout and augmentation from the seed
        torch.manual_seed(settings.seed)
        net = start if start is not None else AttributeClassifier(config)
        if encoder is not None and start is None:
            net.backbone.load_state_dict(encoder["backbone"])
        optimizer = torch.optim.Adam(net.parameters(), lr=settings.lr)
        net.train()
        for _ in range(settings.steps):
            classes = rng.integers(0, n_classes, settings.batch_size)
            index = np.asarray([rng.choice(by_class[c]) for c in classes])
            batch = images[index]
            logits = net(appearance_augment(batch) if augment else batch)["task"]
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


def sensitivity_at_specificity(
    labels: np.ndarray, positive: np.ndarray, specificity: float = SPECIFICITY
) -> float:
    """Share of positives scored above the threshold that keeps ``specificity`` of the
    negatives below it (a screening operating point); ValueError without both classes."""
    negatives, positives = positive[labels == 0], positive[labels == 1]
    if not len(negatives) or not len(positives):
        raise ValueError("sensitivity needs both classes")
    return float((positives > np.quantile(negatives, specificity)).mean())


def metric_functions(n_classes: int) -> dict[str, Callable[[np.ndarray, np.ndarray], float]]:
    """``{name: f(labels, probs)}``: accuracy, balanced accuracy, AUROC (one-vs-rest macro
    for > 2 classes) and, for two classes, sensitivity at 90 % specificity."""

    def accuracy(labels, probs):
        return float((probs.argmax(1) == labels).mean())

    def balanced(labels, probs):
        predicted = probs.argmax(1)
        return float(np.mean([(predicted[labels == c] == c).mean() for c in np.unique(labels)]))

    def area(labels, probs):
        if n_classes == 2:
            return auroc(labels, probs[:, 1])
        roc_auc_score = optional_import("sklearn.metrics", "eval").roc_auc_score
        return float(roc_auc_score(labels, probs, multi_class="ovr", labels=range(n_classes)))

    out = {"accuracy": accuracy, "balanced_accuracy": balanced, "auroc": area}
    if n_classes == 2:
        out["sensitivity_at_90_specificity"] = lambda labels, probs: sensitivity_at_specificity(
            labels, probs[:, 1]
        )
    return out


def scores(
    labels: np.ndarray,
    runs: list[np.ndarray],
    n_boot: int,
    seed: int,
    baselines: Mapping[str, list[np.ndarray]] | None = None,
) -> dict[str, Any]:
    """Each metric as the mean over training runs (``runs``: one (N, classes) probability
    array per seed) with its bootstrap interval over the test images, each run's value, and,
    for each of ``baselines`` (``{"real": runs}``: another arm's runs on the same images),
    the paired difference ``vs_<name>`` (this arm minus that one, one resampling for both)
    with its interval."""
    index = np.arange(len(labels))
    baselines = dict(baselines or {})
    out: dict[str, Any] = {"per_seed": {}, **{f"vs_{key}": {} for key in baselines}}
    for name, fn in metric_functions(runs[0].shape[1]).items():

        def mean(i, probs=runs, fn=fn):
            return float(np.mean([fn(labels[i], p[i]) for p in probs]))

        out[name] = bootstrap_ci(mean, [index], n_boot=n_boot, seed=seed)
        out["per_seed"][name] = [fn(labels, p) for p in runs]
        for key, base in baselines.items():

            def gain(i, fn=fn, mean=mean, base=base):
                return mean(i) - float(np.mean([fn(labels[i], p[i]) for p in base]))

            out[f"vs_{key}"][name] = bootstrap_ci(gain, [index], n_boot=n_boot, seed=seed)
    return out


def utility(
    train: ImageSet,
    synthetic: ImageSet,
    test: ImageSet,
    settings: UtilitySettings = UtilitySettings(),
    encoder: dict[str, Any] | None = None,
    progress=None,
    external: Mapping[str, ImageSet] | None = None,
) -> dict[str, Any]:
    """Every arm's test scores; an arm without enough examples of each class says so.

    ``encoder``: ``{"config": ClassifierConfig, "backbone": state_dict}`` for the transfer
    arms (skipped without one). ``progress(arm)`` is called as each arm finishes.
    ``external``: further test sets (another hospital, the same size as ``test``), scored
    under ``arms[arm]["external"][name]``.
    """
    train, synthetic, test = (_within(s, settings.within) for s in (train, synthetic, test))
    classes = task_classes(train, test, settings.attribute)
    require(len(classes), 2, f"utility ({settings.attribute}: classes in both training and test sets)")
    real = labelled(train, settings.attribute, classes)
    made = labelled(synthetic, settings.attribute, classes)
    rng = np.random.default_rng(settings.seed)
    plans = {arm: _plan(arm, real, made, settings, rng) for arm in settings.arms}
    tests = {"": labelled(test, settings.attribute, classes)}
    _require_classes(tests[""], classes, MIN_PER_CLASS_TEST, "utility test set")
    for name, images in (external or {}).items():
        tests[name] = labelled(_within(images, settings.within), settings.attribute, classes)
        _require_classes(tests[name], classes, MIN_PER_CLASS_TEST, f"utility test set {name}")
    out: dict[str, Any] = {
        "attribute": settings.attribute,
        "within": dict(settings.within),
        "classes": list(classes),
        "counts": {arm: _counts(p.data, classes) for arm, p in plans.items()},
        "test_counts": _counts(tests[""], classes),
        "external_counts": {name: _counts(t, classes) for name, t in tests.items() if name},
        "settings": {
            "steps": settings.steps,
            "batch_size": settings.batch_size,
            "lr": settings.lr,
            "seeds": settings.seeds,
            "augment": settings.augment,
            "synthetic_per_real": settings.synthetic_per_real,
        },
        "arms": {},
    }
    predictions: dict[str, dict[str, list[np.ndarray]]] = {}
    plan = [(arm, None) for arm in settings.arms]
    if encoder is not None:
        plan += [(arm, encoder) for arm in settings.transfer_arms]
    for arm, start in plan:
        name = arm if start is None else f"transfer:{arm}"
        arm_plan = plans[arm] if start is None else _plan(arm, real, made, settings, rng)
        out["arms"][name] = guarded(
            lambda n=name, p=arm_plan, e=start: _arm(p, tests, classes, settings, e, n, predictions)
        )
        if progress is not None:
            progress(name)
    return out


def utility_study(
    regimes: Mapping[str, tuple[ImageSet, ImageSet]],
    test: ImageSet,
    settings: UtilitySettings,
    external: Mapping[str, ImageSet] | None = None,
    encoder: dict[str, Any] | None = None,
    progress=None,
) -> dict[str, Any]:
    """:func:`utility` in every regime: ``{"10 %": (real training images, synthetic images
    from a generator that saw only those patients)}`` -> ``{"regimes": {name: report}}``,
    each report with the regime's number of training subjects. ``progress(regime, arm)`` is
    called as each arm finishes."""
    out: dict[str, Any] = {"attribute": settings.attribute, "regimes": {}}
    for name, (train, synthetic) in regimes.items():

        def tick(arm: str, regime: str = name) -> None:
            if progress is not None:
                progress(regime, arm)

        report = guarded(
            lambda t=train, s=synthetic, f=tick: utility(t, s, test, settings, encoder, f, external)
        )
        out["regimes"][name] = {**report, "subjects": len(set(train.groups))}
    return out


def _plan(
    arm: str, real: Labelled, synthetic: Labelled, settings: UtilitySettings, rng: np.random.Generator
) -> ArmData:
    """What ``arm`` trains on (see the module docstring)."""
    ratio = settings.synthetic_per_real

    def some_synthetic(scale: float) -> Labelled:
        return synthetic if ratio is None else _balanced(synthetic, round(scale * ratio * len(real)), rng)

    if arm == "real":
        return ArmData(real, settings.augment)
    if arm == "real+augmentation":
        return ArmData(real, True)
    if arm == "real+synthetic":
        return ArmData(_concat(real, some_synthetic(1)), settings.augment)
    if arm == "real+synthetic x2":
        return ArmData(_concat(real, some_synthetic(2)), settings.augment)
    if arm == "real+duplicates":  # as many extra images as real+synthetic adds, drawn from real
        extra = len(some_synthetic(1)) if len(synthetic) else len(real)
        return ArmData(_concat(real, _balanced(real, extra, rng, replace=True)), settings.augment)
    if arm == "synthetic":
        return ArmData(some_synthetic(1), settings.augment)
    if arm == "pretrain:synthetic":
        return ArmData(real, settings.augment, pretrain=synthetic)
    if arm == "shuffled_labels":
        return ArmData(Labelled(real.images, rng.permutation(real.labels)), settings.augment)
    raise ValueError(f"unknown utility arm {arm!r}")


def _balanced(data: Labelled, n: int, rng: np.random.Generator, replace: bool = False) -> Labelled:
    """``n`` images of ``data`` (fewer only when it holds fewer), as equal a count per class
    as the classes allow: a class short of its share leaves the rest to the others."""
    by_class = sorted((np.flatnonzero(data.labels == c) for c in np.unique(data.labels)), key=len)
    index, left = [], max(n, 0)
    for k, members in enumerate(by_class):
        share = -(-left // (len(by_class) - k))  # ceil: the larger classes come last
        count = share if replace else min(share, len(members))
        index.append(
            rng.choice(members, count, replace=True) if replace else rng.permutation(members)[:count]
        )
        left -= count
    index = np.concatenate(index) if index else np.zeros(0, int)
    return Labelled(data.images[index], data.labels[index])


def _arm(
    plan: ArmData,
    tests: dict[str, Labelled],
    classes: tuple[str, ...],
    settings: UtilitySettings,
    encoder: dict[str, Any] | None,
    name: str,
    predictions: dict[str, dict[str, list[np.ndarray]]],
) -> dict[str, Any]:
    """Train one arm's CNNs (one per seed) and score them on every test set, paired with
    the real-only arm's runs on the same images (and, for an arm with synthetic images, the
    duplicates control's) when those ran first."""
    _require_classes(plan.data, classes, MIN_PER_CLASS_TRAIN, f"utility arm {name}")
    if plan.pretrain is not None:
        _require_classes(plan.pretrain, classes, MIN_PER_CLASS_TRAIN, f"utility arm {name} (pretraining)")
    runs: dict[str, list[np.ndarray]] = {test: [] for test in tests}
    for k in range(settings.seeds):
        seeded = replace(settings, seed=settings.seed + k)
        start = None
        if plan.pretrain is not None:
            start = train_classifier(plan.pretrain, len(classes), seeded, encoder, plan.augment)
        net = train_classifier(plan.data, len(classes), seeded, encoder, plan.augment, start=start)
        for test, data in tests.items():
            runs[test].append(predict(net, data.images))
    predictions[name] = runs
    prefix = "" if encoder is None else "transfer:"
    against = {"real": f"{prefix}real"}
    if "synthetic" in name:  # does a synthetic image beat one more copy of a real one?
        against["duplicates"] = f"{prefix}real+duplicates"
    baselines = {key: predictions[arm] for key, arm in against.items() if arm in predictions and arm != name}
    out: dict[str, Any] = {}
    for test, data in tests.items():
        base = {key: runs_[test] for key, runs_ in baselines.items()}
        scored = scores(data.labels, runs[test], settings.n_boot, settings.seed, base)
        if test:
            out.setdefault("external", {})[test] = scored
        else:
            out.update(scored)
    out["n_train"] = len(plan.data) + (len(plan.pretrain) if plan.pretrain is not None else 0)
    return out


def _counts(data: Labelled, classes: tuple[str, ...]) -> list[int]:
    return np.bincount(data.labels, minlength=len(classes)).tolist() if len(data) else [0] * len(classes)


def _require_classes(data: Labelled, classes: tuple[str, ...], need: int, what: str) -> None:
    for name, count in zip(classes, _counts(data, classes), strict=True):
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
