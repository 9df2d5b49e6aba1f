"""Exponential moving average of weights (Polyak averaging), the weights that are shipped."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Shadow copies of ``modules``, updated after every optimizer step.

    The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates (the
    TensorFlow ``ExponentialMovingAverage`` ``num_updates`` rule), so a short run is not
    dominated by the random initial weights. Buffers (norm statistics) are copied.
    """

    def __init__(self, modules: dict[str, nn.Module], decay: float) -> None:
        self.decay = decay
        self.sources = modules
        self.shadow = {n: copy.deepcopy(m).eval().requires_grad_(False) for n, m in modules.items()}

    def decay_at(self, updates: int) -> float:
        return min(self.decay, (1 + updates) / (10 + updates))

    @torch.no_grad()
    def update(self, updates: int) -> None:
        """Move the shadows towards the sources; ``updates`` counts steps done, from 1."""
        weight = 1.0 - self.decay_at(updates)
        for name, source in self.sources.items():
            shadow = self.shadow[name]
            torch._foreach_lerp_(list(shadow.parameters()), [p.detach() for p in source.parameters()], weight)
            for b_shadow, b_source in zip(shadow.buffers(), source.buffers(), strict=True):
                b_shadow.copy_(b_source)
