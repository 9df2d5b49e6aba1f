"""The synthetic-image detector: a CNN that tells real from synthetic by pixels alone.

It looks at neither metadata nor the watermark (it was trained on unmarked synthetic
images), so it is the evidence left when a file was stripped and re-encoded, or made by
a generator that marks nothing. It is a statistical judgement, reported as a
probability; ``verify`` ranks it below the marking and the watermark.

Training: ``train_detector`` runs the one training loop (task ``detector``) on a set from
``radsynth.generate.detector_set`` and writes held-out AUROC per generator into the card.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radsynth.data.manifest import Record, load_manifest, read_unit_image, write_manifest
from radsynth.errors import InvalidInput
from radsynth.io import Image, write_text_atomic
from radsynth.models.card import Card
from radsynth.models.checkpoint import CARD
from radsynth.models.classifier import AttributeClassifier
from radsynth.models.registry import load_pretrained, shipped
from radsynth.train.config import config_from_dict
from radsynth.train.tasks.detector import SOURCES, contrast_normalise

INPUT_SIZE = 64
# P(synthetic) from which verify says "likely synthetic". A policy, not a fit: 0.9 keeps
# false alarms on held-out real demo slices near 1 % (the smooth MNI152 population-average
# template is what the detector mistakes), while 98-100 % of synthetic slices pass it.
VERDICT_THRESHOLD = 0.9
MAX_SLICES = 8
# What an image may be for the detector to judge it (a card's ``task_info.domain`` may say
# otherwise). The demo corpus' sources are grey CT and MR volumes whose in-plane sides run
# from 64 px (generated slices) to 512 px (pyradiomics lung CT); an image under half the
# detector's input or over 512 px plus a quarter resamples into something it never saw.
MIN_SIDE = 32
MAX_SIDE = 640
# Modalities that say nothing (PNG/JPEG read as "OT", NIfTI without one): judged on pixels,
# since a stripped synthetic file looks exactly like this.
UNKNOWN_MODALITIES = ("", "OT")
RECIPE: dict[str, Any] = {
    "task": "detector",
    "model": {},
    "data": {"split": "train", "image_size": INPUT_SIZE, "augment": False},
    "steps": 600,
    "batch_size": 32,
    "lr": 1.0e-3,
    "warmup_steps": 30,
    "ema_decay": 0.99,
    "clip_grad": 1.0,
    "amp": True,
    "checkpoint_every": 300,
    "log_every": 50,
    "seed": 0,
}


@dataclass(frozen=True)
class Domain:
    """The images a detector was trained on: modalities (from its card), grey or colour,
    in-plane sides in pixels. ``outside`` says why an image is not one of them."""

    modalities: tuple[str, ...]
    min_side: int = MIN_SIDE
    max_side: int = MAX_SIDE
    colour: bool = False

    @classmethod
    def from_card(cls, card: Card) -> Domain:
        """``task_info.domain`` when the card has one, else its vocabulary's modalities."""
        given = dict(card.task_info.get("domain") or {})
        vocabulary = card.task_info.get("vocabulary") or {}
        modalities = given.pop("modalities", None) or vocabulary.get("modality") or ()
        return cls(tuple(str(m).upper() for m in modalities), **given)

    def outside(self, image: Image) -> str:
        """Why ``image`` is outside this domain ("" when it is inside)."""
        modality = (image.modality or "").upper()
        if self.modalities and modality not in UNKNOWN_MODALITIES and modality not in self.modalities:
            return f"modality {modality}: the detector learnt only {', '.join(self.modalities)}"
        if image.rgb and not self.colour:
            return "colour image: the detector learnt only grey images"
        rows, cols = image.spatial_shape[-2:]
        if min(rows, cols) < self.min_side or max(rows, cols) > self.max_side:
            sides = f"{self.min_side} to {self.max_side} px"
            return f"{rows}x{cols} px: the detector learnt images of {sides} a side"
        return ""


@dataclass
class SyntheticDetector:
    """A trained detector: ``score`` gives P(synthetic) per image; ``outside_domain`` says
    when an image is unlike anything it learnt (its probability there would be a guess)."""

    net: AttributeClassifier
    card: Card
    threshold: float = VERDICT_THRESHOLD
    domain: Domain = field(default_factory=lambda: Domain(("CT", "MR")))

    @classmethod
    def load(cls, folder: str | Path | None = None) -> SyntheticDetector:
        """The checkpoint in ``folder`` (a ``radsynth train`` model folder), else the shipped one."""
        folder = folder if folder is not None else shipped("detector")
        pretrained = load_pretrained(folder, "detector", exported=True)  # CPU, float32: the trace
        threshold = float(pretrained.card.metrics.get("threshold", VERDICT_THRESHOLD))
        card = pretrained.card
        return cls(pretrained.modules["detector"], card, threshold, Domain.from_card(card))

    @property
    def model_id(self) -> str:
        return self.card.model_id or "detector"

    def outside_domain(self, image: Image) -> str:
        """Why the detector should not judge ``image`` ("" when it may)."""
        return self.domain.outside(image)

    def score(self, slices: Sequence[np.ndarray]) -> np.ndarray:
        """P(synthetic) for each 2D array (any units, any size >= 8 px)."""
        if not slices:
            return np.zeros(0)
        batch = torch.stack([_input(s) for s in slices])  # (N, 1, 64, 64)
        with torch.inference_mode():
            logits = self.net(contrast_normalise(batch))["source"].float()
        return torch.softmax(logits, dim=1)[:, SOURCES.index("synthetic")].numpy()

    def score_image(self, image: Image) -> float:
        """P(synthetic) for an image; a volume scores as the mean over up to 8 slices."""
        array = image.array.mean(-1) if image.rgb else image.array
        if array.ndim == 3:
            picks = np.unique(np.linspace(0, array.shape[0] - 1, min(MAX_SLICES, array.shape[0])).astype(int))
            return float(self.score([array[k] for k in picks]).mean())
        return float(self.score([array])[0])


def _input(array: np.ndarray) -> torch.Tensor:
    """A 2D array -> (1, 64, 64) float32 (resized with antialiasing; normalised later)."""
    image = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    if image.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        image = torch.nn.functional.interpolate(
            image, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False
        )
    return image[0]


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Area under the ROC curve = P(score of a positive > score of a negative) (ties half):
    the Mann-Whitney U statistic divided by n_pos * n_neg."""
    from scipy.stats import mannwhitneyu

    if len(positive) == 0 or len(negative) == 0:
        raise InvalidInput("AUROC needs at least one positive and one negative")
    return float(mannwhitneyu(positive, negative).statistic / (len(positive) * len(negative)))


def evaluate_detector(detector: SyntheticDetector, manifest: str | Path) -> dict[str, Any]:
    """Held-out (split ``test``) AUROC of each generator's images against all real ones,
    the accuracy at the detector's threshold, and the counts behind them."""
    manifest = Path(manifest)
    records = [r for r in load_manifest(manifest) if r.split == "test"]
    scores = detector.score([read_unit_image(r.resolve(manifest)) for r in records])
    names = [str(r.labels.get("generator", "real")) for r in records]
    generator = np.array(names)
    real = scores[generator == "real"]
    per_generator = {
        g: {"auroc": auroc(scores[generator == g], real), "n": int((generator == g).sum())}
        for g in sorted(set(names) - {"real"})
    }
    synthetic = scores[generator != "real"]
    return {
        "auroc": auroc(synthetic, real),
        "per_generator": per_generator,
        "real_n": int(real.size),
        "threshold": detector.threshold,
        "accuracy_real": float(np.mean(real < detector.threshold)),
        "accuracy_synthetic": float(np.mean(synthetic >= detector.threshold)),
    }


def train_detector(
    manifest: str | Path,
    out: str | Path,
    *,
    generators: Sequence[str] | None = None,
    steps: int | None = None,
    seed: int = 0,
    progress: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Train on ``manifest``'s train split (only the real images and those of ``generators``
    when given), evaluate on its held-out split (every generator), and write the figures
    into the model's card. Returns the model folder and the figures."""
    from radsynth.train.loop import train

    out = Path(out)
    train_manifest = _subset(Path(manifest), out, generators) if generators else Path(manifest)
    recipe = {
        **RECIPE,
        "data": {**RECIPE["data"], "manifest": str(train_manifest.absolute())},
        "steps": steps or RECIPE["steps"],
        "seed": seed,
        "name": out.name,
        "out": str(out.absolute()),
    }
    folder = train(config_from_dict(recipe), progress=progress)
    figures = evaluate_detector(SyntheticDetector.load(folder), manifest)
    figures["trained_on"] = sorted(generators) if generators else "all"
    card_path = folder / CARD
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card.setdefault("metrics", {}).update({"held_out": figures, "threshold": VERDICT_THRESHOLD})
    write_text_atomic(card_path, json.dumps(card, indent=2) + "\n")
    return folder, figures


def _subset(manifest: Path, out: Path, generators: Sequence[str]) -> Path:
    """A manifest of the real images and the chosen generators' (absolute paths)."""
    keep = {"real", *generators}
    records = [
        Record(**{**r.__dict__, "path": str(r.resolve(manifest).absolute())})
        for r in load_manifest(manifest)
        if str(r.labels.get("generator", "real")) in keep
    ]
    return write_manifest(records, out / f"manifest-{'-'.join(sorted(generators))}.jsonl")
