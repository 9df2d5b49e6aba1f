"""The intensity convention between the data layer and the networks.

``radsynth.data`` normalises every modality to [0, 1] (CT by HU window, MR by
percentiles). The networks work in [-1, 1]: zero-centred data suits the N(0, I) noise of
diffusion and the tanh output of the GAN generator.
"""

from __future__ import annotations

import torch


def to_model_range(images: torch.Tensor) -> torch.Tensor:
    """[0, 1] (data layer) -> [-1, 1] (networks)."""
    return images * 2.0 - 1.0


def to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] (networks) -> [0, 1], clipped: what a generated ``Image`` holds."""
    return ((images + 1.0) / 2.0).clamp(0.0, 1.0)
