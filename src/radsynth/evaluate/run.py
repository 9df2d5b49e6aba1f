"""One evaluation of a synthetic set: fidelity, diversity, adherence, privacy, membership
inference and downstream utility, as one ``metrics`` dict (what ``metrics.json`` holds)
and the pictures the HTML report shows.

Sets: ``real`` is the held-out real set (other subjects than the generator saw);
``train`` is what the generator was trained on (privacy, membership, utility);
``synthetic`` is the set under test. Every random choice takes ``options.seed``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from radsynth.evaluate.adherence import adherence
from radsynth.evaluate.diversity import diversity
from radsynth.evaluate.features import DomainReader, radiomics_features
from radsynth.evaluate.fidelity import fidelity
from radsynth.evaluate.membership import membership_inference
from radsynth.evaluate.privacy import COPY_THRESHOLD, copy_audit
from radsynth.evaluate.sets import ImageSet, check_comparable
from radsynth.evaluate.stats import guarded
from radsynth.evaluate.utility import UtilitySettings, encoder_start, regime_sets, utility, utility_study
from radsynth.extras import require_extra
from radsynth.sampling.pipeline import GenerationPipeline

Progress = Callable[[str, int, int], None]
"""``progress(step, done, total)``: called as a long step advances."""


@dataclass(frozen=True)
class EvaluationOptions:
    """``n_boot``: bootstrap resamples per interval. ``resample``: resize sets whose image
    size differs from the real set's (otherwise refused). ``copy_threshold``: pixel
    correlation above which a synthetic image is a copy. ``max_membership``: images per
    group in the membership attack. ``radiomics``: compute FRD (pyradiomics, the slowest
    step, ~0.1 s per image). ``utility_regimes``: fractions of the training subjects the
    utility CNN learns from (one fraction of 1: every subject, one regime; several: a
    study, see ``utility_study``; the synthetic set is the same in every regime)."""

    seed: int = 0
    n_boot: int = 100
    resample: bool = False
    copy_threshold: float = COPY_THRESHOLD
    max_membership: int = 300
    radiomics: bool = True
    utility: UtilitySettings = field(default_factory=UtilitySettings)
    utility_regimes: tuple[float, ...] = (1.0,)


@dataclass(frozen=True)
class Models:
    """The networks an evaluation uses: ``reader`` (attribute classifier, adherence),
    ``encoder`` (domain features and the transfer arms' initialisation), ``attack`` (the
    generator under membership inference; None skips it)."""

    reader: DomainReader
    encoder: DomainReader
    attack: GenerationPipeline | None = None


@dataclass
class Evaluation:
    """``metrics`` (JSON-ready) and the sets the report draws from."""

    metrics: dict[str, Any]
    real: ImageSet
    synthetic: ImageSet
    train: ImageSet


def evaluate(
    real: ImageSet,
    synthetic: ImageSet,
    train: ImageSet,
    models: Models,
    options: EvaluationOptions = EvaluationOptions(),
    progress: Progress | None = None,
    real_radiomics: np.ndarray | None = None,
) -> Evaluation:
    """Every metric of the report; a metric whose sets are too small says so instead.

    ``real_radiomics``: the real set's radiomics features when already computed (several
    synthetic sets against one real set), saving the slowest step."""
    require_extra("eval", "evaluation")
    tick = progress or (lambda *_: None)
    synthetic = check_comparable(real, synthetic, options.resample)
    train = check_comparable(real, train, options.resample)
    metrics: dict[str, Any] = {"sets": _describe(real, synthetic, train)}
    dom = {
        name: models.encoder.features(s.images)
        for name, s in (("real", real), ("synthetic", synthetic), ("train", train))
    }
    rad = _radiomics(real, synthetic, options, tick, real_radiomics)
    tick("fidelity", 0, 1)
    metrics["fidelity"] = fidelity(
        rad["real"], rad["synthetic"], dom["real"], dom["synthetic"], options.n_boot, options.seed
    )
    if not options.radiomics:
        metrics["fidelity"]["frd"] = {"skipped": "radiomics turned off (--no-radiomics)"}
    tick("fidelity", 1, 1)
    metrics["diversity"] = diversity(synthetic, seed=options.seed)
    metrics["adherence"] = {
        "synthetic": adherence(list(synthetic.texts), models.reader.attributes(synthetic.images)),
        "real_reference": adherence(list(real.texts), models.reader.attributes(real.images)),
    }
    metrics["privacy"] = guarded(
        lambda: copy_audit(
            synthetic.images,
            train.images,
            dom["synthetic"],
            dom["train"],
            real.images,
            options.copy_threshold,
        )
    )
    tick("membership inference", 0, 1)
    metrics["membership"] = guarded(lambda: _membership(models.attack, train, real, options))
    tick("membership inference", 1, 1)
    metrics["utility"] = guarded(lambda: _utility(train, synthetic, real, options, models, tick))
    metrics["models"] = {
        "reader": models.reader.card.model_id,
        "encoder": models.encoder.card.model_id,
        "attack": None if models.attack is None else models.attack.model_id,
    }
    metrics["options"] = {
        "seed": options.seed,
        "n_boot": options.n_boot,
        "copy_threshold": options.copy_threshold,
        "resample": options.resample,
        "utility_regimes": list(options.utility_regimes),
    }
    return Evaluation(metrics, real, synthetic, train)


def _radiomics(
    real: ImageSet, synthetic: ImageSet, options: EvaluationOptions, tick: Progress, known: np.ndarray | None
) -> dict:
    if not options.radiomics:
        return {"real": np.zeros((0, 1)), "synthetic": np.zeros((0, 1))}
    total, done = len(real) + len(synthetic), (0 if known is None else len(real))
    if known is None:
        known, _ = radiomics_features(list(real.images), progress=lambda i: tick("radiomics", i, total))
    syn_rad, _ = radiomics_features(
        list(synthetic.images), progress=lambda i: tick("radiomics", done + i, total)
    )
    return {"real": known, "synthetic": syn_rad}


def _utility(train, synthetic, real, options: EvaluationOptions, models: Models, tick: Progress):
    """One regime (every training subject) or a study over ``options.utility_regimes``."""
    u = options.utility
    arms = (len(u.arms) + len(u.transfer_arms)) * len(options.utility_regimes)
    done = iter(range(1, arms + 1))
    encoder = encoder_start(models.encoder)
    if tuple(options.utility_regimes) == (1.0,):
        return utility(train, synthetic, real, u, encoder, lambda _arm: tick("utility", next(done), arms))
    regimes = regime_sets(train, tuple(options.utility_regimes), u.attribute, options.seed)
    return utility_study(
        {name: (subset, synthetic) for name, subset in regimes.items()},
        real,
        u,
        encoder=encoder,
        progress=lambda _regime, _arm: tick("utility", next(done), arms),
    )


def _membership(attack, train: ImageSet, real: ImageSet, options: EvaluationOptions) -> dict[str, Any]:
    rng = np.random.default_rng(options.seed)
    members, non_members = (s.sample(options.max_membership, rng) for s in (train, real))
    return membership_inference(attack, members, non_members, n_boot=options.n_boot, seed=options.seed)


def _describe(real: ImageSet, synthetic: ImageSet, train: ImageSet) -> dict[str, Any]:
    def one(s: ImageSet) -> dict[str, Any]:
        modalities = {m: s.modalities.count(m) for m in sorted(set(s.modalities))}
        return {"n": len(s), "size": list(s.size), "modalities": modalities, "groups": len(set(s.groups))}

    return {"real": one(real), "synthetic": one(synthetic), "train": one(train)}
