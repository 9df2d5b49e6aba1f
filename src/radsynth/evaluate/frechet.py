"""Fréchet distances between two sets of feature vectors.

The Fréchet (2-Wasserstein) distance between Gaussians fitted to each set:
``|mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2))``. For radiomics the features are
first z-scored with the *real* set's mean and standard deviation (features constant on
the real set dropped), as the Fréchet Radiomics Distance does, so no single feature with
a large scale (an energy, a variance) dominates.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg

from radsynth.errors import InvalidInput


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussian fits of ``a`` (N, D) and ``b`` (M, D)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise InvalidInput(f"need two (N>=2, D) feature sets of equal D, got {a.shape} and {b.shape}")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.isfinite(covmean).all():  # near-singular product: regularise, as pytorch-fid does
        eps = np.eye(len(cov_a)) * 1e-6
        covmean = linalg.sqrtm((cov_a + eps) @ (cov_b + eps))
    covmean = np.real(covmean)
    value = float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean))
    return max(value, 0.0)


def zscore_against(real: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both sets z-scored with ``real``'s statistics; features constant on ``real`` or
    non-finite anywhere are dropped."""
    real, other = np.asarray(real, np.float64), np.asarray(other, np.float64)
    keep = np.isfinite(real).all(0) & np.isfinite(other).all(0) & (real.std(0) > 1e-12)
    mu, sd = real[:, keep].mean(0), real[:, keep].std(0)
    return (real[:, keep] - mu) / sd, (other[:, keep] - mu) / sd


def frechet_radiomics_distance(real: np.ndarray, synthetic: np.ndarray) -> float:
    """FRD: the Fréchet distance of radiomics features z-scored against the real set."""
    r, s = zscore_against(real, synthetic)
    return frechet_distance(r, s)
