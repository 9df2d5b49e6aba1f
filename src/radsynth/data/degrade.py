"""Degradations that make training pairs for restoration: noise per modality and
resolution loss. Each draws its parameters from the given generator (or the global RNG,
which the training loop seeds per step) and applies them deterministically.

Images are torch tensors (B, 1, H, W) of intensities in [0, 1].
"""

from __future__ import annotations

import torch


def rician(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """MR magnitude noise: |x + n_re + i n_im| with n ~ N(0, sigma^2) per channel (Gudbjartsson
    & Patlak 1995). ``sigma``: (B,) in units of the intensity range."""
    s = sigma.view(-1, *([1] * (images.dim() - 1)))
    real = images + s * torch.randn_like(images)
    imaginary = s * torch.randn_like(images)
    return torch.sqrt(real**2 + imaginary**2)


def poisson_gaussian(images: torch.Tensor, photons: torch.Tensor, sigma: float) -> torch.Tensor:
    """Low-dose CT-like noise: Poisson(photons * x) / photons plus Gaussian read-out noise
    (Foi et al. 2008's Poisson-Gaussian model). ``photons``: (B,) counts per unit intensity."""
    p = photons.view(-1, *([1] * (images.dim() - 1)))
    counts = torch.poisson(images.clamp_min(0) * p)
    return counts / p + sigma * torch.randn_like(images)


def lower_resolution(images: torch.Tensor, factor: int) -> torch.Tensor:
    """Area-average down by ``factor``, then bicubic back to the original size: what a
    scan ``factor`` times coarser looks like on the fine grid."""
    size = images.shape[-2:]
    small = torch.nn.functional.interpolate(images, scale_factor=1 / factor, mode="area")
    return torch.nn.functional.interpolate(small, size=size, mode="bicubic", align_corners=False)


def uniform(low: float, high: float, n: int, device: torch.device | None = None) -> torch.Tensor:
    """(n,) draws from U(low, high) on the global RNG."""
    return low + (high - low) * torch.rand(n, device=device)
