"""Reader-study statistics: how well people tell real images from synthetic ones.

The visual Turing test of the field (CT-GAN, RoentGen and others): readers label a
shuffled mix of real and synthetic images "real" or "synthetic" with a confidence of 1-5.
"Positive" means synthetic throughout, so sensitivity is the share of synthetic images
caught and ``fooled`` (1 - sensitivity) the share of synthetic images taken for real, the
number those papers quote.

- AUROC from the ratings: each answer becomes a score for "synthetic" on a 10-point scale
  (``rating_score``: "sure real" -5 ... -1, +1 ... +5 "sure synthetic") and the AUROC is the
  Mann-Whitney probability that a synthetic image scores above a real one, ties counted
  half (Hanley & McNeil 1982).
- d' = z(hit rate) - z(false-alarm rate) (signal detection theory, Macmillan & Creelman
  2005), a rate of 0 or 1 moved to 1/(2N) or 1 - 1/(2N) so d' stays finite (Macmillan &
  Kaplan 1985).
- Fleiss' kappa (Fleiss 1971) for agreement among the readers who answered the same items.

Pairs ("which of the two is real?", two-alternative forced choice): each item is one real
and one synthetic image side by side and the reader picks the side they take for real. The
proportion correct of a 2AFC task is, in expectation, the AUROC the same reader would reach
on single images (Green & Swets 1966; Hanley & McNeil 1982), so the two modes compare; the
fooled rate is its complement (the synthetic one picked as real), and d' = sqrt(2) z(PC)
(Macmillan & Creelman 2005), PC kept off 0 and 1 by 1/(2N) as above.

Intervals: percentile bootstrap over the answers (``evaluate.stats.bootstrap_ci``, paired
rows, one seeded generator), so a report is reproducible.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import norm

from radsynth.errors import NotEnoughSamples
from radsynth.evaluate.stats import DEFAULT_BOOTSTRAP, bootstrap_ci

ANSWERS = ("real", "synthetic")
SIDES = ("left", "right")
CONFIDENCES = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class Answer:
    """One reader's answer on one item: the truth, the call and how sure (1-5). On a pair
    ``truth`` is the real image's side and ``answer`` the side picked as real."""

    reader: str
    item: str
    truth: str
    answer: str
    confidence: int


def rating_score(answer: str, confidence: int) -> int:
    """The answer as a score for "synthetic": -5 (sure real) ... -1, +1 ... +5 (sure
    synthetic); one ordinal scale, so the ratings trace an ROC curve."""
    return confidence if answer == "synthetic" else -confidence


def auroc(truth: np.ndarray, score: np.ndarray) -> float:
    """P(score of a synthetic image > score of a real one), ties half (Mann-Whitney U)."""
    positive, negative = score[truth == 1], score[truth == 0]
    if not len(positive) or not len(negative):
        raise NotEnoughSamples("AUROC needs real and synthetic images")
    greater = (positive[:, None] > negative[None, :]).sum()
    ties = (positive[:, None] == negative[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(positive) * len(negative)))


def _rate(hits: float, n: int) -> float:
    """A rate kept off 0 and 1 by 1/(2N) (Macmillan & Kaplan 1985)."""
    return min(max(hits / n, 1 / (2 * n)), 1 - 1 / (2 * n))


def d_prime(truth: np.ndarray, call: np.ndarray) -> float:
    """z(hit rate) - z(false-alarm rate); "hit": a synthetic image called synthetic."""
    n_pos, n_neg = int((truth == 1).sum()), int((truth == 0).sum())
    if not n_pos or not n_neg:
        raise NotEnoughSamples("d' needs real and synthetic images")
    hit = _rate(float(call[truth == 1].sum()), n_pos)
    false_alarm = _rate(float(call[truth == 0].sum()), n_neg)
    return float(norm.ppf(hit) - norm.ppf(false_alarm))


def accuracy(truth: np.ndarray, call: np.ndarray) -> float:
    return float((truth == call).mean())


def sensitivity(truth: np.ndarray, call: np.ndarray) -> float:
    """Share of synthetic images called synthetic."""
    if not (truth == 1).any():
        raise NotEnoughSamples("sensitivity needs synthetic images")
    return float(call[truth == 1].mean())


def specificity(truth: np.ndarray, call: np.ndarray) -> float:
    """Share of real images called real."""
    if not (truth == 0).any():
        raise NotEnoughSamples("specificity needs real images")
    return float(1 - call[truth == 0].mean())


def fooled(truth: np.ndarray, call: np.ndarray) -> float:
    """Share of synthetic images taken for real (the visual Turing tests' "fooled" rate)."""
    return 1 - sensitivity(truth, call)


def proportion_correct(truth: np.ndarray, chosen: np.ndarray) -> float:
    """Share of pairs whose real image was picked (2AFC; in expectation the AUROC)."""
    if not len(truth):
        raise NotEnoughSamples("proportion correct needs answered pairs")
    return float((truth == chosen).mean())


def pair_fooled(truth: np.ndarray, chosen: np.ndarray) -> float:
    """Share of pairs whose synthetic image was picked as the real one."""
    return 1 - proportion_correct(truth, chosen)


def d_prime_2afc(truth: np.ndarray, chosen: np.ndarray) -> float:
    """sqrt(2) z(PC): a 2AFC reader compares two noisy observations, so the same
    separation gives sqrt(2) times the single-image z (Macmillan & Creelman 2005)."""
    proportion_correct(truth, chosen)  # refuses no pairs
    return float(np.sqrt(2) * norm.ppf(_rate(float((truth == chosen).sum()), len(truth))))


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa from an (items, categories) table of how many readers chose each
    category; every row must sum to the same number of readers n >= 2 (Fleiss 1971)."""
    counts = np.asarray(counts, np.float64)
    raters = counts.sum(1)
    if len(counts) < 1 or raters.min() < 2 or not np.all(raters == raters[0]):
        raise NotEnoughSamples("Fleiss' kappa needs items each answered by the same >= 2 readers")
    n = raters[0]
    p_item = ((counts**2).sum(1) - n) / (n * (n - 1))  # agreement on each item
    p_category = counts.sum(0) / counts.sum()
    p_bar, p_expected = p_item.mean(), (p_category**2).sum()
    if p_expected == 1:
        raise NotEnoughSamples("Fleiss' kappa is undefined when every answer is the same")
    return float((p_bar - p_expected) / (1 - p_expected))


_METRICS = {
    "accuracy": (accuracy, "call"),
    "sensitivity": (sensitivity, "call"),
    "specificity": (specificity, "call"),
    "fooled": (fooled, "call"),
    "d_prime": (d_prime, "call"),
    "auroc": (auroc, "score"),
}


_PAIR_METRICS = {
    "proportion_correct": proportion_correct,
    "fooled": pair_fooled,
    "d_prime": d_prime_2afc,
}


def pair_scores(answers: Sequence[Answer], n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> dict[str, Any]:
    """The 2AFC metrics over pair ``answers``, each ``{value, low, high}`` as ``scores``."""
    truth = np.array([a.truth == "right" for a in answers], np.int64)
    chosen = np.array([a.answer == "right" for a in answers], np.int64)
    out: dict[str, Any] = {"n": len(answers), "correct": int((truth == chosen).sum())}
    for name, metric in _PAIR_METRICS.items():
        try:
            out[name] = bootstrap_ci(metric, [truth, chosen], n_boot=n_boot, seed=seed, paired=True)
        except NotEnoughSamples as err:
            out[name] = {"skipped": str(err)}
    return out


def scores(answers: Sequence[Answer], n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> dict[str, Any]:
    """Every metric over ``answers`` with its bootstrap interval (``{value, low, high}``),
    or ``{"skipped": why}`` where the answers cannot define it (one class only)."""
    truth = np.array([a.truth == "synthetic" for a in answers], np.int64)
    call = np.array([a.answer == "synthetic" for a in answers], np.int64)
    score = np.array([rating_score(a.answer, a.confidence) for a in answers], np.float64)
    out: dict[str, Any] = {"n": len(answers), "correct": int((truth == call).sum())}
    for name, (metric, column) in _METRICS.items():
        second = call if column == "call" else score
        try:
            out[name] = bootstrap_ci(metric, [truth, second], n_boot=n_boot, seed=seed, paired=True)
        except NotEnoughSamples as err:
            out[name] = {"skipped": str(err)}
    return out


def agreement(answers: Sequence[Answer], categories: Sequence[str] = ANSWERS) -> dict[str, Any]:
    """Fleiss' kappa over the items every reader answered (readers with no answer on an
    item would unbalance the table), with how many readers and items it used; on pairs
    the categories are the sides chosen."""
    readers = sorted({a.reader for a in answers})
    by_item: dict[str, dict[str, str]] = {}
    for a in answers:
        by_item.setdefault(a.item, {})[a.reader] = a.answer
    shared = sorted(item for item, calls in by_item.items() if len(calls) == len(readers))
    counts = np.array([[list(by_item[i].values()).count(c) for c in categories] for i in shared])
    counts = counts.reshape(-1, len(categories))
    try:
        kappa: float | None = fleiss_kappa(counts)
        why = None
    except NotEnoughSamples as err:
        kappa, why = None, str(err)
    return {"fleiss_kappa": kappa, "readers": len(readers), "items": len(shared), "skipped": why}


def per_item(answers: Sequence[Answer]) -> list[dict[str, Any]]:
    """Each item: its truth, how many readers answered and the share of them fooled (on a
    pair: who picked the synthetic image as real)."""
    items: dict[str, list[Answer]] = {}
    for a in answers:
        items.setdefault(a.item, []).append(a)
    return [
        {
            "item": item,
            "truth": group[0].truth,
            "readers": len(group),
            "fooled": sum(a.answer != a.truth for a in group) / len(group),
        }
        for item, group in sorted(items.items())
    ]


def report(
    answers: Sequence[Answer], n_boot: int = DEFAULT_BOOTSTRAP, seed: int = 0, pairs: bool = False
) -> dict[str, Any]:
    """The whole study: pooled and per-reader metrics, per-item fooled shares and the
    readers' agreement; ``pairs`` for a study of pairs (2AFC metrics, kappa on the side)."""
    readers = sorted({a.reader for a in answers})
    metrics = pair_scores if pairs else scores
    return {
        "mode": "pairs" if pairs else "singles",
        "pooled": metrics(answers, n_boot, seed),
        "readers": {r: metrics([a for a in answers if a.reader == r], n_boot, seed) for r in readers},
        "items": per_item(answers),
        "agreement": agreement(answers, SIDES if pairs else ANSWERS),
    }


METRIC_NAMES = {
    "accuracy": "accuracy",
    "sensitivity": "sensitivity (synthetic caught)",
    "specificity": "specificity (real called real)",
    "fooled": "fooled (synthetic taken for real)",
    "auroc": "AUROC from the ratings",
    "d_prime": "d'",
}
PAIR_METRIC_NAMES = {
    "proportion_correct": "proportion correct (2AFC, expected AUROC)",
    "fooled": "fooled (synthetic picked as real)",
    "d_prime": "d' = sqrt(2) z(PC)",
}


def _cell(value: dict[str, Any]) -> str:
    if "skipped" in value:
        return f"n/a ({value['skipped']})"
    return f"{value['value']:.3f} [{value['low']:.3f}, {value['high']:.3f}]"


def render_html(result: dict[str, Any]) -> str:
    """The report as one self-contained HTML page: the metrics table (pooled, then each
    reader), agreement, and each image's fooled share with its source."""
    from html import escape

    names = result.get("reader_names", {})
    pairs = result.get("mode") == "pairs"
    metric_names = PAIR_METRIC_NAMES if pairs else METRIC_NAMES
    columns = [("pooled", result["pooled"])] + [(names.get(r, r), s) for r, s in result["readers"].items()]
    head = "".join(f"<th>{escape(str(name))}</th>" for name, _ in columns)
    rows = "".join(
        f"<tr><th>{escape(label)}</th>"
        + "".join(f"<td>{escape(_cell(s[key]))}</td>" for _, s in columns)
        + "</tr>"
        for key, label in metric_names.items()
    )
    counts = "".join(f"<td>{s['correct']} of {s['n']}</td>" for _, s in columns)
    agreement = result["agreement"]
    kappa = "n/a" if agreement["fleiss_kappa"] is None else f"{agreement['fleiss_kappa']:.3f}"
    items = "".join(
        f"<tr><td>{i.get('position', '')}</td><td>{escape(i['truth'])}</td><td>{i['readers']}</td>"
        f"<td>{i['fooled']:.2f}</td><td>{escape(json.dumps(i.get('source', {})))}</td></tr>"
        for i in result["items"]
    )
    unit = "pairs" if pairs else "images"
    legend = "Pairs: which is real; truth = the real image's side." if pairs else "Positive = synthetic."
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Reader study {escape(str(result.get('study', '')))}</title></head><body>"
        f"<h1>Reader study {escape(str(result.get('study', '')))}: spot the synthetic</h1>"
        f"<p>{legend} Values with 95 % bootstrap intervals.</p>"
        f"<table border='1'><tr><th></th>{head}</tr><tr><th>correct</th>{counts}</tr>{rows}</table>"
        f"<p>Fleiss' kappa: {kappa} ({agreement['readers']} readers, {agreement['items']} shared {unit})</p>"
        f"<h2>{unit.capitalize()}</h2><table border='1'><tr><th>#</th><th>truth</th><th>readers</th>"
        f"<th>fooled</th><th>source</th></tr>{items}</table></body></html>\n"
    )
