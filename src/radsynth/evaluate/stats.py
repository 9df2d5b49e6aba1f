"""Bootstrapped confidence intervals and the ``{value, low, high}`` records metrics report.

A percentile bootstrap (Efron & Tibshirani 1993, ch. 13): resample each set with
replacement, recompute the statistic, take the 2.5th and 97.5th percentiles. Paired data
(a label and a score per test image) are resampled together. Every resampling draws from
one seeded generator, so a report is reproducible.

For a distance (FRD, FID, KID) the draws sit above the full-set value: a resample holds
duplicates and fewer distinct images, which a distance counts as a difference. The
interval then shows how much the value moves with the sample; it does not bracket the
full-set value, and identical sets give 0 with an interval above it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from radsynth.errors import NotEnoughSamples

DEFAULT_BOOTSTRAP = 200


def bootstrap_ci(
    statistic: Callable[..., float],
    samples: Sequence[np.ndarray],
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    level: float = 0.95,
    paired: bool = False,
) -> dict[str, float]:
    """``statistic(*samples)`` with its percentile-bootstrap interval.

    Each array in ``samples`` is resampled along its first axis, independently, or with
    one shared index when ``paired``. Resamples on which the statistic is undefined
    (``NotEnoughSamples`` or a ValueError, e.g. one class only) are skipped.
    """
    value = float(statistic(*samples))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        if paired:
            index = rng.integers(0, len(samples[0]), len(samples[0]))
            resampled = [s[index] for s in samples]
        else:
            resampled = [s[rng.integers(0, len(s), len(s))] for s in samples]
        try:
            draws.append(float(statistic(*resampled)))
        except (NotEnoughSamples, ValueError):
            continue
    return interval(value, draws, level)


def interval(value: float, draws: Sequence[float], level: float = 0.95) -> dict[str, float]:
    """``{value, low, high}`` from bootstrap draws (low = high = value when none)."""
    if not draws:
        return {"value": value, "low": value, "high": value}
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(np.asarray(draws, np.float64), [tail, 100 - tail])
    return {"value": value, "low": float(low), "high": float(high)}


def guarded(compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``compute()``, or ``{"skipped": "<why>"}`` when its sets are too small: the report
    says "not enough samples: need >= N" and emits no number for that metric."""
    try:
        return compute()
    except NotEnoughSamples as err:
        return {"skipped": str(err)}
