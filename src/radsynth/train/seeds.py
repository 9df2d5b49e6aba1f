"""Seeds: the same initial weights on every process, and per-step randomness that is a
pure function of (seed, step, rank), so a resumed run draws exactly what the
uninterrupted one would have, with no generator state to save."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed torch (all devices), numpy and ``random`` with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def step_seed(seed: int, step: int, rank: int) -> int:
    """A well-mixed 63-bit seed for one step of one process."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def seed_step(seed: int, step: int, rank: int) -> None:
    """Seed everything for step ``step`` on process ``rank`` (noise, timesteps, dropout)."""
    seed_everything(step_seed(seed, step, rank))
