"""Small building blocks shared by the networks: N-d convolutions and text pooling."""

from __future__ import annotations

import torch
from torch import nn


def conv_nd(spatial_dims: int, *args, **kwargs) -> nn.Module:
    """``nn.Conv2d`` or ``nn.Conv3d``: the one place a network picks by ``spatial_dims``."""
    return (nn.Conv2d if spatial_dims == 2 else nn.Conv3d)(*args, **kwargs)


def pool_text(tokens: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Masked mean of token embeddings: (B, T, D), (B, T) bool -> (B, D).

    Padding tokens are left out so a short prompt is not diluted by the padding up to the
    encoder's fixed length. An all-padding row (never produced by our encoders, which keep
    a [CLS] token even for "") would give zeros rather than NaN.
    """
    if mask is None:
        return tokens.mean(dim=1)
    weights = mask.to(tokens.dtype).unsqueeze(-1)  # (B, T, 1)
    return (tokens * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
