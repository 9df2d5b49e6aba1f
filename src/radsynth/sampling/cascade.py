"""A cascade's super-resolution stage: the generator's images, ``factor`` times finer.

As Cheff (Weber et al. 2023) does for chest X-rays, the generator draws at its own size
and a second model restores the detail of a bicubic upsampling: a translator trained by
degrading real images at the higher resolution (``radsynth.train.tasks.translate``,
``mode: sr``; images in [-1, 1] in and out, the same size). Instance norm keeps each
image to itself, so image i of a batch stays the same at any batch size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class SuperResolution:
    """``net``: the translator (images in [-1, 1] -> [-1, 1], same size); ``factor``: the
    in-plane upsampling; ``model_id``: the stage's, recorded in every image's facts."""

    net: nn.Module
    factor: int
    model_id: str

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) in [0, 1] -> (B, 1, factor H, factor W) in [0, 1]."""
        up = nn.functional.interpolate(
            pixels.float(), scale_factor=self.factor, mode="bicubic", align_corners=False
        )
        return ((self.net(up * 2 - 1).float() + 1) / 2).clamp(0, 1)
