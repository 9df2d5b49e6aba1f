"""Conditional GAN: text encoder -> generator from per-sample noise (one forward)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from radsynth.models.card import Card
from radsynth.models.diffusion import Cond
from radsynth.models.gan import GANConfig
from radsynth.models.intensity import to_unit_range
from radsynth.sampling.families.base import UNGUIDED, BuildOptions, conditioning, module
from radsynth.sampling.seeds import generators, randn_per_sample
from radsynth.text.base import TextEncoder


@dataclass
class ConditionalGAN:
    text_encoder: TextEncoder
    net: nn.Module
    config: GANConfig
    compiled: ClassVar[bool] = False

    @classmethod
    def from_card(
        cls,
        card: Card,
        modules: Mapping[str, nn.Module],
        text_encoder: TextEncoder | None,
        options: BuildOptions,
    ) -> ConditionalGAN:
        return cls(
            text_encoder=conditioning(card, modules, text_encoder),
            net=module(modules, "generator"),
            config=GANConfig.from_dict(card.section("gan")),
        )

    def modules(self) -> list[nn.Module]:
        return [m for m in (self.net, self.text_encoder) if isinstance(m, nn.Module)]

    def run(self, steps: int | None, guidance: float | None, device: torch.device) -> _GANRun:
        return _GANRun(self, device)


@dataclass(frozen=True)
class _GANRun:
    gan: ConditionalGAN
    device: torch.device
    facts: dict[str, Any] = field(default_factory=lambda: dict(UNGUIDED))

    def __call__(self, cond: Cond, seeds: Sequence[int]) -> torch.Tensor:
        b = len(seeds)
        z = randn_per_sample((self.gan.config.noise_dim,), generators(seeds), self.device)  # (b, noise_dim)
        images = self.gan.net(z, cond.context.expand(b, -1, -1), cond.mask.expand(b, -1))  # (b, C, *size)
        return to_unit_range(images.float())
