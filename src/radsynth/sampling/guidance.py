"""Classifier-free guidance (Ho & Salimans 2022, eq. 6, with scale = 1 + w) as a denoiser wrapper.

``out = uncond + scale * (cond - uncond)``, with the conditional and unconditional passes
in **one batched forward**: the batch is doubled by concatenation, so the network runs once
once per step instead of twice. Guidance on the raw output is
the same as guidance on the x0 or epsilon estimate for epsilon, v and flow models alike,
because at fixed ``(x_t, t)`` each estimate is an affine function of the output with the
same coefficients for both halves. It wraps a denoiser and is one, so samplers know
nothing about guidance.

Training must match: caption dropout replaces 10-20 % of captions by the empty prompt ""
(not by zeros), and ``uncond`` here is the text encoder's encoding of that same "".
"""

from __future__ import annotations

import torch

from radsynth.errors import InvalidInput
from radsynth.models.diffusion import DenoiserLike


class ClassifierFreeGuidance:
    """Wrap ``denoiser``; ``uncond`` is the encoding of the empty prompt, (1, T, D) and (1, T)."""

    def __init__(
        self, denoiser: DenoiserLike, uncond: tuple[torch.Tensor, torch.Tensor | None], scale: float
    ) -> None:
        if not scale >= 0:
            raise InvalidInput(f"guidance scale must be >= 0, got {scale}")
        self.denoiser = denoiser
        self.schedule = denoiser.schedule
        self.uncond_context, self.uncond_mask = uncond
        self.scale = float(scale)

    def __call__(
        self, x_t: torch.Tensor, t: torch.Tensor, context: torch.Tensor | None, mask: torch.Tensor | None
    ) -> torch.Tensor:
        if self.scale == 1.0 or context is None:  # plain conditional model: skip the second half
            return self.denoiser(x_t, t, context, mask)
        b = x_t.shape[0]
        u_ctx = self.uncond_context.to(context).expand(b, *context.shape[1:])  # (B, T, D)
        both_ctx = torch.cat([context, u_ctx])  # (2B, T, D)
        both_mask = None
        if mask is not None and self.uncond_mask is not None:
            both_mask = torch.cat([mask, self.uncond_mask.to(mask.device).expand(b, -1)])  # (2B, T)
        out = self.denoiser(torch.cat([x_t, x_t]), torch.cat([t, t]), both_ctx, both_mask)  # (2B, C, ...)
        cond, uncond = out.chunk(2)
        return uncond + self.scale * (cond - uncond)
