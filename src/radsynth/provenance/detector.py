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
from radsynth.train.tasks.detector import SOURCES, detector_view

INPUT_SIZE = 64
# P(synthetic) from which verify says "suspect" when a card states none. A trained card
# carries its calibrated threshold (``metrics.threshold``, from :func:`calibrate_threshold`).
VERDICT_THRESHOLD = 0.9
# The false-positive rate the threshold allows on the worst real source a detector never saw.
TARGET_FPR = 0.01
MARGIN = 1e-6
MAX_SLICES = 8
# What an image may be for the detector to judge it (a card's ``task_info.domain`` may say
# otherwise). Its training sources run from 28 px (MedMNIST) to 512 px (pyradiomics lung
# CT); its calibration's never-trained sources have radiographs up to 4,032 px (Figure 1),
# all scored well under the threshold: everything is resized to 64 px first.
MIN_SIDE = 28
MAX_SIDE = 4096
# Modalities that say nothing (PNG/JPEG read as "OT", NIfTI without one): judged on pixels,
# since a stripped synthetic file looks exactly like this.
UNKNOWN_MODALITIES = ("", "OT")
RECIPE: dict[str, Any] = {
    "task": "detector",
    "model": {},
    "data": {"split": "train", "image_size": INPUT_SIZE, "augment": False},
    "steps": 3000,
    "batch_size": 32,
    "lr": 1.0e-3,
    "warmup_steps": 30,
    "ema_decay": 0.99,
    "clip_grad": 1.0,
    "amp": True,
    "checkpoint_every": 1000,
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
        if not judged_slices(image):
            return "blank image: no pixels to judge"
        return ""


def blank(array: np.ndarray) -> bool:
    """Almost nothing but one value (an empty slice at a volume's end, a black frame): under
    1 % of its pixels differ from the median by more than 2 % of the range. Its residual is
    nothing but rounding, which the detector cannot read (an empty glioma slice scored
    P 0.99997 in calibration), so it is never asked."""
    array = np.asarray(array, dtype=np.float64)
    spread = float(array.max() - array.min()) if array.size else 0.0
    if spread == 0.0:
        return True
    return float(np.mean(np.abs(array - np.median(array)) > 0.02 * spread)) < 0.01


def spaced_slices(image: Image, n: int = MAX_SLICES) -> list[np.ndarray]:
    """The grey 2D image, or up to ``n`` evenly spaced slices of a volume, first to last."""
    array = image.array.mean(-1) if image.rgb else image.array
    if array.ndim == 2:
        return [array]
    picks = np.unique(np.linspace(0, array.shape[0] - 1, min(n, array.shape[0])).astype(int))
    return [array[k] for k in picks]


def judged_slices(image: Image) -> list[np.ndarray]:
    """What the detector scores of ``image``: :func:`spaced_slices`, blank ones left out."""
    return [a for a in spaced_slices(image) if not blank(a)]


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
        batch = torch.stack([detector_input(s) for s in slices])  # (N, 1, 64, 64)
        with torch.inference_mode():
            view = str(self.card.task_info.get("view", "image"))
            logits = self.net(detector_view(batch, view))["source"].float()
        # float64: near 1 a float32 softmax saturates, and the threshold lives up there
        return torch.softmax(logits.double(), dim=1)[:, SOURCES.index("synthetic")].numpy()

    def score_image(self, image: Image) -> float:
        """P(synthetic) for an image; a volume scores as the mean over up to 8 slices (blank
        ones left out; a blank image is outside the domain, see :func:`blank`)."""
        slices = judged_slices(image)
        return float(self.score(slices).mean()) if slices else float("nan")


def detector_input(array: np.ndarray) -> torch.Tensor:
    """A 2D array -> (1, 64, 64) float32 (resized with antialiasing; normalised later): the
    one path from pixels to the network, for training images and verified files alike."""
    image = torch.from_numpy(np.array(array, dtype=np.float32))[None, None]  # a copy: inputs may be read-only
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


def _origin(record: Record) -> str:
    labels = record.labels or {}
    return str(labels.get("origin") or labels.get("generator") or "real")


def _fpr_at(scores: np.ndarray, threshold: float) -> float:
    return float(np.mean(scores >= threshold)) if scores.size else float("nan")


def evaluate_detector(
    detector: SyntheticDetector, manifest: str | Path, records: Sequence[Record] | None = None
) -> dict[str, Any]:
    """Per origin, on ``records`` (default: the manifest's ``test`` split): each real
    source's false-positive rate at the detector's threshold and AUROC against all the
    synthetic images; each generator's AUROC against all the real images and its share
    caught at the threshold."""
    manifest = Path(manifest)
    records = [r for r in load_manifest(manifest) if r.split == "test"] if records is None else list(records)
    images = [read_unit_image(r.resolve(manifest)) for r in records]
    asked = [not blank(a) for a in images]  # verify never asks about a blank image
    records = [r for r, a in zip(records, asked, strict=True) if a]
    scores = detector.score([im for im, a in zip(images, asked, strict=True) if a])
    synthetic_mask = np.array([(r.labels or {}).get("source") == "synthetic" for r in records])
    origins = np.array([_origin(r) for r in records])
    real, synthetic = scores[~synthetic_mask], scores[synthetic_mask]
    t = detector.threshold
    per_source = {
        o: {
            "n": int((origins == o).sum()),
            "fpr": _fpr_at(scores[origins == o], t),
            "auroc": auroc(synthetic, scores[origins == o]) if synthetic.size else None,
        }
        for o in sorted(set(origins[~synthetic_mask]))
    }
    per_generator = {
        o: {
            "n": int((origins == o).sum()),
            "auroc": auroc(scores[origins == o], real) if real.size else None,
            "caught": _fpr_at(scores[origins == o], t),
        }
        for o in sorted(set(origins[synthetic_mask]))
    }
    return {
        "auroc": auroc(synthetic, real) if real.size and synthetic.size else None,
        "threshold": t,
        "real_n": int(real.size),
        "synthetic_n": int(synthetic.size),
        "fpr": _fpr_at(real, t),
        "caught": _fpr_at(synthetic, t),
        "per_source": per_source,
        "per_generator": per_generator,
    }


def train_detector(
    manifest: str | Path,
    out: str | Path,
    *,
    exclude: Sequence[str] = (),
    exclude_subjects: Sequence[str] = (),
    view: str = "residual",
    steps: int | None = None,
    seed: int = 0,
    threshold: float | None = None,
    progress: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """Train on ``manifest``'s train split without the origins in ``exclude`` (real
    sources or generators held out) and any image of ``exclude_subjects``, evaluate on its
    test split, and write the figures (and ``threshold``, when given) into the model's
    card. Returns the folder and figures."""
    from radsynth.train.loop import train

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train_manifest = _subset(Path(manifest), out, set(exclude), set(exclude_subjects))
    recipe = {
        **RECIPE,
        "model": {**RECIPE["model"], "view": view},
        "data": {**RECIPE["data"], "manifest": str(train_manifest.absolute())},
        "steps": steps or RECIPE["steps"],
        "seed": seed,
        "name": out.name,
        "out": str(out.absolute()),
    }
    folder = train(config_from_dict(recipe), progress=progress)
    detector = SyntheticDetector.load(folder)
    detector.threshold = threshold if threshold is not None else VERDICT_THRESHOLD
    figures = {**evaluate_detector(detector, manifest), "held_out_origins": sorted(exclude)}
    card_path = folder / CARD
    card = json.loads(card_path.read_text(encoding="utf-8"))
    card.setdefault("metrics", {}).update({"threshold": detector.threshold, "held_out": figures})
    write_text_atomic(card_path, json.dumps(card, indent=2) + "\n")
    return folder, figures


def _subset(manifest: Path, out: Path, exclude: set[str], subjects: set[str]) -> Path:
    """The manifest's train split without the ``exclude`` origins and the images of
    ``subjects`` (absolute paths)."""
    records = [
        Record(**{**r.__dict__, "path": str(r.resolve(manifest).absolute())})
        for r in load_manifest(manifest)
        if r.split == "train" and _origin(r) not in exclude and r.subject not in subjects
    ]
    return write_manifest(records, out / "train-manifest.jsonl")


def threshold_for(scores_by_source: dict[str, np.ndarray], target: float = TARGET_FPR) -> float:
    """The lowest threshold at which every source's false-positive rate (share of its
    scores >= the threshold) is at most ``target``: the worst source decides."""
    threshold = 0.0
    for scores in scores_by_source.values():
        ordered = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
        allowed = int(np.floor(target * ordered.size))  # scores that may reach the threshold
        if allowed < ordered.size:
            # just above the first score that may not reach it; the margin covers the last
            # digits a score moves by between batch sizes (1e-9 near P = 1)
            threshold = max(threshold, float(ordered[allowed]) + MARGIN)
    return min(threshold, 1.0)


def calibrate_detector(
    manifest: str | Path,
    out: str | Path,
    *,
    sources: Sequence[str],
    generators: Sequence[str] = (),
    view: str = "residual",
    steps: int | None = None,
    seed: int = 0,
    floor: float = 0.0,
    on_run: Any = None,
) -> dict[str, Any]:
    """Leave one source out: for each real source in ``sources``, train without it, and
    without every image of its patients (the translators' outputs made from their scans,
    the chest X-ray LDM's drawn from their captions: each carries the same subject), and
    score all its images beside the other synthetic test images; the threshold is the one
    at which the *worst* held-out source stays at or under :data:`TARGET_FPR`. Then leave
    one generator out for each of ``generators``. Each run's scores are kept under
    ``out/without-<name>/scores.json``, so an interrupted calibration resumes. ``floor``:
    a threshold the result may not go under (what sources never trained on demand of the
    shipped detector, :func:`never_trained_threshold`)."""
    manifest = Path(manifest)
    out = Path(out)
    records = load_manifest(manifest)
    synthetic_test = [
        r for r in records if r.split == "test" and (r.labels or {}).get("source") == "synthetic"
    ]
    real_test = [r for r in records if r.split == "test" and (r.labels or {}).get("source") == "real"]
    runs: dict[str, dict[str, Any]] = {}
    for kind, names in (("source", sources), ("generator", generators)):
        for name in names:
            run = out / f"without-{name}"
            cached = run / "scores.json"
            if cached.is_file():
                runs[name] = json.loads(cached.read_text(encoding="utf-8"))
                continue
            held = [r for r in records if _origin(r) == name and (kind == "source" or r.split == "test")]
            subjects = sorted({r.subject for r in held}) if kind == "source" else []
            folder, _ = train_detector(
                manifest, run, exclude=[name], exclude_subjects=subjects, view=view, steps=steps, seed=seed
            )
            detector = SyntheticDetector.load(folder)
            others = [
                r
                for r in (synthetic_test if kind == "source" else real_test)
                if _origin(r) != name and r.subject not in set(subjects)
            ]
            score = detector.score
            runs[name] = {
                "kind": kind,
                "held_out": score([read_unit_image(r.resolve(manifest)) for r in held]).tolist(),
                "others": score([read_unit_image(r.resolve(manifest)) for r in others]).tolist(),
            }
            write_text_atomic(cached, json.dumps(runs[name]))
            if on_run is not None:
                on_run(name)
    for name, run in runs.items():  # verify never asks the detector about a blank image
        held = [r for r in records if _origin(r) == name and (run["kind"] == "source" or r.split == "test")]
        asked = [not blank(read_unit_image(r.resolve(manifest))) for r in held]
        run["blank"] = int(len(asked) - sum(asked))
        run["held_out"] = [p for p, a in zip(run["held_out"], asked, strict=True) if a]
    held_out_real = {n: np.array(r["held_out"]) for n, r in runs.items() if r["kind"] == "source"}
    left_out = threshold_for(held_out_real)
    threshold = max(left_out, floor)
    return {
        "threshold": threshold,
        "threshold_left_out": left_out,
        "target_fpr": TARGET_FPR,
        **summarise(runs, threshold),
    }


def never_trained_threshold(
    detector: SyntheticDetector, images: dict[str, Sequence[np.ndarray]], target: float = TARGET_FPR
) -> dict[str, Any]:
    """The lowest threshold at which each real source in ``images`` (sources no detector
    trained on: research-only films, DICOM files from elsewhere; each source's 2D images as
    verify sees them) has at most ``target`` of its images flagged by ``detector`` (the
    shipped one), and their scores' summary. Blank images are not asked."""
    scores = {name: detector.score([a for a in arrays if not blank(a)]) for name, arrays in images.items()}
    threshold = threshold_for({n: v for n, v in scores.items() if v.size})
    return {
        "threshold": threshold,
        "sources": {
            n: {"n": int(v.size), "max_p": float(v.max()) if v.size else None} for n, v in scores.items()
        },
    }


def summarise(runs: dict[str, dict[str, Any]], threshold: float) -> dict[str, Any]:
    """Per held-out source: n, FPR at ``threshold``, AUROC against the synthetic test
    images, the largest score; per held-out generator: n, AUROC, share caught."""
    sources, generators = {}, {}
    for name, run in runs.items():
        held, others = np.array(run["held_out"]), np.array(run["others"])
        if run["kind"] == "source":
            sources[name] = {
                "n": int(held.size),
                "blank": run.get("blank", 0),
                "fpr": _fpr_at(held, threshold),
                "auroc": auroc(others, held),
                "max_p": float(held.max()),
            }
        else:
            generators[name] = {
                "n": int(held.size),
                "auroc": auroc(held, others),
                "caught": _fpr_at(held, threshold),
            }
    return {"leave_one_source_out": sources, "leave_one_generator_out": generators}


def record_calibration(
    folder: str | Path, manifest: str | Path, calibration: dict[str, Any]
) -> dict[str, Any]:
    """Write the calibration (threshold, leave-one-out figures) into a model's card, and
    its test-split figures at that threshold; returns those figures."""
    detector = SyntheticDetector.load(folder)
    detector.threshold = calibration["threshold"]
    figures = {**evaluate_detector(detector, manifest), "held_out_origins": []}
    card_path = Path(folder) / CARD
    card = json.loads(card_path.read_text(encoding="utf-8"))
    metrics = card.setdefault("metrics", {})
    metrics.update({"threshold": calibration["threshold"], "calibration": calibration, "held_out": figures})
    write_text_atomic(card_path, json.dumps(card, indent=2) + "\n")
    return figures
