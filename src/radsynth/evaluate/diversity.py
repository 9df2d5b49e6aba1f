"""Diversity: how different the synthetic images are from each other.

- MS-SSIM (Wang et al. 2003) between random pairs of samples of the same prompt and of
  different prompts (lower = more diverse; a collapsed generator scores near 1 within a
  prompt). Computed by ``pytorch-msssim``. Five scales need the image to stay larger
  than the window after four halvings: the standard 11-pixel window needs > 160 px, so
  the window shrinks to the largest odd size that fits (3 px at 64x64, where the
  coarsest scale is 4x4 pixels); the weights are the standard five.
- Duplicates: pairs of samples whose pixel correlation (``radsynth.evaluate.privacy``)
  exceeds the copy threshold.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch

from radsynth.errors import NotEnoughSamples
from radsynth.evaluate.privacy import COPY_THRESHOLD, correlation_matrix
from radsynth.evaluate.sets import ImageSet, require
from radsynth.evaluate.stats import guarded, interval
from radsynth.extras import optional_import

MAX_WINDOW = 11
MIN_PAIRS = 5


def ms_ssim_window(size: int) -> int:
    """The largest odd window (<= 11 px) that fits five MS-SSIM scales of ``size`` px."""
    window = MAX_WINDOW
    while window > 1 and size <= (window - 1) * 16:
        window -= 2
    if window < 3:
        raise NotEnoughSamples(f"MS-SSIM: not enough pixels: need > 32 px per side, got {size}")
    return window


def ms_ssim_pairs(images: np.ndarray, pairs: np.ndarray, batch: int = 256) -> np.ndarray:
    """MS-SSIM of each (i, j) in ``pairs`` (P, 2) of [0, 1] images (N, H, W)."""
    ms_ssim = optional_import("pytorch_msssim", "eval").ms_ssim

    window = ms_ssim_window(min(images.shape[1:]))
    out = []
    for start in range(0, len(pairs), batch):
        chunk = pairs[start : start + batch]
        x = torch.from_numpy(images[chunk[:, 0]])[:, None]  # (P, 1, H, W)
        y = torch.from_numpy(images[chunk[:, 1]])[:, None]
        out.append(ms_ssim(x, y, data_range=1.0, size_average=False, win_size=window))
    return torch.cat(out).numpy().astype(np.float64)


def sample_pairs(groups: tuple[str, ...], same: bool, n_pairs: int, seed: int) -> np.ndarray:
    """Up to ``n_pairs`` distinct index pairs within one group (``same``) or across groups."""
    rng = np.random.default_rng(seed)
    labels = np.asarray(groups)
    if same:
        members = defaultdict(list)
        for i, g in enumerate(groups):
            members[g].append(i)
        candidates = [(a, b) for m in members.values() for k, a in enumerate(m) for b in m[k + 1 :]]
    else:
        n = len(groups)
        tries = rng.integers(0, n, size=(4 * n_pairs, 2))
        candidates = [(a, b) for a, b in tries if a != b and labels[a] != labels[b]]
    if not candidates:
        return np.zeros((0, 2), int)
    chosen = rng.choice(len(candidates), min(n_pairs, len(candidates)), replace=False)
    return np.asarray([candidates[i] for i in chosen], int)


def diversity(synthetic: ImageSet, n_pairs: int = 500, seed: int = 0) -> dict[str, Any]:
    """MS-SSIM within and across prompts (mean with a 95 % bootstrap interval over pairs)
    and the duplicate pairs among the samples."""
    return {
        "ms_ssim_within_prompt": guarded(lambda: _mean_ms_ssim(synthetic, True, n_pairs, seed)),
        "ms_ssim_across_prompts": guarded(lambda: _mean_ms_ssim(synthetic, False, n_pairs, seed + 1)),
        "duplicates": guarded(lambda: duplicates(synthetic.images)),
    }


def _mean_ms_ssim(synthetic: ImageSet, same: bool, n_pairs: int, seed: int) -> dict[str, Any]:
    pairs = sample_pairs(synthetic.groups, same, n_pairs, seed)
    require(len(pairs), MIN_PAIRS, "MS-SSIM " + ("within prompts" if same else "across prompts") + " (pairs)")
    values = ms_ssim_pairs(synthetic.images, pairs)
    rng = np.random.default_rng(seed)
    draws = [values[rng.integers(0, len(values), len(values))].mean() for _ in range(200)]
    window = ms_ssim_window(min(synthetic.size))
    return {**interval(float(values.mean()), draws), "pairs": len(values), "window_px": window}


def duplicates(images: np.ndarray, threshold: float = COPY_THRESHOLD) -> dict[str, Any]:
    """Pairs of images with pixel correlation above ``threshold``; the share of images in
    at least one such pair."""
    require(len(images), 2, "duplicates")
    corr = correlation_matrix(images, images)
    np.fill_diagonal(corr, -1.0)
    above = corr > threshold
    i, j = np.nonzero(np.triu(above, 1))
    return {
        "threshold": threshold,
        "pairs": len(i),
        "share_of_images": float(above.any(1).mean()),
        "examples": [[int(a), int(b), float(corr[a, b])] for a, b in list(zip(i, j, strict=True))[:8]],
    }
