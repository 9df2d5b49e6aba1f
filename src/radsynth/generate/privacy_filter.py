"""``radsynth generate --privacy-filter``: drop generated images that nearly copy a
training image before anything is written.

The training set is the one the checkpoint's card names (``data.manifest`` and
``data.split``, e.g. ``demo:64`` / ``train``). An image is a near-copy when its pixel
correlation with some training image exceeds the threshold (default
``radsynth.evaluate.privacy.COPY_THRESHOLD`` = 0.95; why that value is documented there).
Dropped images are not replaced: the batch is smaller, and the caller says by how much.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radsynth.data.manifest import resolve_manifest
from radsynth.errors import InvalidInput
from radsynth.evaluate.privacy import COPY_THRESHOLD, nearest_by_correlation
from radsynth.evaluate.sets import load_set
from radsynth.io import Image
from radsynth.models.registry import read_card


@dataclass(frozen=True)
class FilterResult:
    """The images kept, and for each dropped one its index in the batch and correlation."""

    kept: list[Image]
    dropped: list[tuple[int, float]]
    threshold: float


def training_images(checkpoint: str | Path) -> np.ndarray:
    """(N, H, W) [0, 1] training images of the checkpoint, as its card names them."""
    data = read_card(checkpoint).data
    if data is None or not data.manifest:
        raise InvalidInput(
            "the checkpoint's card names no training manifest: cannot filter copies", checkpoint
        )
    manifest = resolve_manifest(data.manifest)
    split = data.split
    return load_set(manifest, "training", (split,) if split else (), resample=True).images


def near_copy_scores(images: list[Image], train: np.ndarray) -> list[float]:
    """Each generated [0, 1] image's highest pixel correlation with a ``train`` image."""
    pixels = np.stack([np.asarray(im.array, np.float32) for im in images])
    if pixels.shape[1:] != train.shape[1:]:
        raise InvalidInput(
            f"generated images are {pixels.shape[1:]} but the training images are {train.shape[1:]}"
        )
    _, best = nearest_by_correlation(pixels, train)
    return [float(b) for b in best]


def drop_near_copies(
    images: list[Image], train: np.ndarray, threshold: float = COPY_THRESHOLD
) -> FilterResult:
    """Keep the generated [0, 1] images whose best correlation with ``train`` is at most
    ``threshold``."""
    if not 0 < threshold <= 1:
        raise InvalidInput(f"privacy threshold must be in (0, 1], got {threshold}")
    best = near_copy_scores(images, train)
    kept = [im for im, b in zip(images, best, strict=True) if b <= threshold]
    dropped = [(i, b) for i, b in enumerate(best) if b > threshold]
    return FilterResult(kept, dropped, threshold)
