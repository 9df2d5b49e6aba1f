"""Fidelity: how close the synthetic set's distribution is to the real one.

- FRD: Fréchet Radiomics Distance (``radsynth.evaluate.frechet``) on pyradiomics features
  z-scored against the real set.
- FID and KID in the domain encoder's feature space (trained here on real slices; see its
  card). KID (Bińkowski et al. 2018) is the unbiased MMD^2 with the cubic polynomial
  kernel ``k(x, y) = (x.y / d + 1)^3``: unlike FID it has no bias that depends on the set
  size, which matters with a few hundred images.
- Precision / recall / density / coverage (Naeem et al. 2020) on k-nearest-neighbour
  manifolds of the same features, computed by the ``prdc`` package (NAVER's reference
  code). Features are z-scored against the real set first, so every dimension counts.

Each value comes with a bootstrapped 95 % interval (both sets resampled).
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np

from radsynth.evaluate.frechet import frechet_distance, frechet_radiomics_distance, zscore_against
from radsynth.evaluate.sets import require
from radsynth.evaluate.stats import bootstrap_ci, guarded, interval
from radsynth.extras import optional_import

# Fewer than this many images per set and a Gaussian fit / a k-NN radius is noise.
MIN_FRECHET = 10
PRDC_K = 5
MIN_PRDC = PRDC_K + 2


def kid(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Unbiased MMD^2 between (N, D) and (M, D) features, cubic polynomial kernel."""
    require(min(len(real), len(synthetic)), 2, "KID")
    d = real.shape[1]
    k_rr = (real @ real.T / d + 1) ** 3
    k_ss = (synthetic @ synthetic.T / d + 1) ** 3
    k_rs = (real @ synthetic.T / d + 1) ** 3
    n, m = len(real), len(synthetic)
    within_r = (k_rr.sum() - np.trace(k_rr)) / (n * (n - 1))
    within_s = (k_ss.sum() - np.trace(k_ss)) / (m * (m - 1))
    return float(within_r + within_s - 2 * k_rs.mean())


def prdc(real: np.ndarray, synthetic: np.ndarray, k: int = PRDC_K) -> dict[str, float]:
    """Precision, recall, density, coverage of (M, D) synthetic against (N, D) real."""
    compute_prdc = optional_import("prdc", "eval").compute_prdc
    require(min(len(real), len(synthetic)), k + 2, f"precision/recall (k={k})")
    r, s = zscore_against(real, synthetic)
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        values = compute_prdc(r.astype(np.float32), s.astype(np.float32), nearest_k=k)
    return {name: float(v) for name, v in values.items()}


def fidelity(
    real_radiomics: np.ndarray,
    synthetic_radiomics: np.ndarray,
    real_domain: np.ndarray,
    synthetic_domain: np.ndarray,
    n_boot: int = 100,
    seed: int = 0,
) -> dict[str, Any]:
    """FRD, FID, KID and precision/recall/density/coverage with bootstrapped intervals;
    a metric whose sets are too small reports why instead of a value."""
    out: dict[str, Any] = {}
    pairs = {
        "frd": (frechet_radiomics_distance, real_radiomics, synthetic_radiomics),
        "fid_domain": (frechet_distance, real_domain, synthetic_domain),
        "kid_domain": (kid, real_domain, synthetic_domain),
    }
    for name, (metric, real, synthetic) in pairs.items():
        out[name] = guarded(lambda m=metric, r=real, s=synthetic: _frechet_like(m, r, s, n_boot, seed))
    out["prdc"] = guarded(lambda: _prdc_with_ci(real_domain, synthetic_domain, n_boot, seed))
    return out


def _frechet_like(metric, real: np.ndarray, synthetic: np.ndarray, n_boot: int, seed: int) -> dict:
    require(min(len(real), len(synthetic)), MIN_FRECHET, "Fréchet/KID")
    return bootstrap_ci(metric, [real, synthetic], n_boot=n_boot, seed=seed)


def _prdc_with_ci(real: np.ndarray, synthetic: np.ndarray, n_boot: int, seed: int) -> dict:
    """Resampling with replacement puts zero-distance duplicates into a k-NN ball, which
    inflates precision/recall; the interval resamples 80 % without replacement instead
    (subsampling, Politis & Romano 1994)."""
    value = prdc(real, synthetic)
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {k: [] for k in value}
    n_real, n_syn = max(MIN_PRDC, int(0.8 * len(real))), max(MIN_PRDC, int(0.8 * len(synthetic)))
    for _ in range(max(1, n_boot // 4)):
        r = real[rng.choice(len(real), min(n_real, len(real)), replace=False)]
        s = synthetic[rng.choice(len(synthetic), min(n_syn, len(synthetic)), replace=False)]
        for k, v in prdc(r, s).items():
            draws[k].append(v)
    return {k: interval(value[k], draws[k]) for k in value}
