"""VAE as a generator: per-sample latents from the prior N(0, I) -> decoder. Unconditional:
the prompt only sets the output's modality and metadata."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from radsynth.models.card import Card
from radsynth.models.diffusion import Cond
from radsynth.models.intensity import to_unit_range
from radsynth.models.vae import VAEConfig
from radsynth.sampling.families.base import UNGUIDED, BuildOptions, module
from radsynth.sampling.seeds import generators, randn_per_sample
from radsynth.text.base import TextEncoder


@dataclass
class PriorVAE:
    vae: nn.Module
    vae_config: VAEConfig
    image_size: tuple[int, ...]
    text_encoder: ClassVar[TextEncoder | None] = None
    compiled: ClassVar[bool] = False

    @classmethod
    def from_card(
        cls,
        card: Card,
        modules: Mapping[str, nn.Module],
        text_encoder: TextEncoder | None,
        options: BuildOptions,
    ) -> PriorVAE:
        return cls(module(modules, "vae"), VAEConfig.from_dict(card.section("vae")), card.image_size)

    def modules(self) -> list[nn.Module]:
        return [self.vae]

    def run(self, steps: int | None, guidance: float | None, device: torch.device) -> _VAERun:
        return _VAERun(self, device)


@dataclass(frozen=True)
class _VAERun:
    prior: PriorVAE
    device: torch.device
    facts: dict[str, Any] = field(default_factory=lambda: dict(UNGUIDED))

    def __call__(self, cond: Cond, seeds: Sequence[int]) -> torch.Tensor:
        latent_shape = self.prior.vae_config.latent_shape(self.prior.image_size)
        z = randn_per_sample(latent_shape, generators(seeds), self.device)  # (b, C, *latent)
        return decode(self.prior.vae, z)


def decode(vae: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Latents (B, C, *latent) -> images (B, C, *size) in [0, 1], decoded as one batch."""
    return to_unit_range(vae.decode_stage_2_outputs(z).float())
