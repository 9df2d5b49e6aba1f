"""The text-conditional GAN: hinge loss (Lim & Ye 2017; Miyato et al. 2018, eq. 16-17),
alternating one discriminator and one generator update per step.

The discriminator also sees real images paired with another sample's caption as fake
(the matching-aware discriminator of Reed et al. 2016, "GAN-CLS", §4.1), so it must
check that image and text agree, and the generator must follow the text to fool it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from radsynth.models.gan import GANConfig, build_gan
from radsynth.train.config import TrainConfig
from radsynth.train.data import TrainingData
from radsynth.train.task import Batch, StepContext
from radsynth.train.tasks.common import TextConditioning, adam, image_fields, network_config, parse_options


@dataclass(frozen=True)
class GANOptions:
    """``text_encoder``: a ``radsynth.text`` encoder config. ``mismatch_weight``: weight of
    the (real image, wrong caption) term in the discriminator loss. ``disc_lr``: default
    the recipe's ``lr``."""

    text_encoder: dict[str, Any] = field(default_factory=lambda: {"kind": "minilm"})
    mismatch_weight: float = 0.5
    disc_lr: float | None = None
    betas: tuple[float, ...] = (0.0, 0.9)


class GANTask:
    shipped: tuple[str, ...] = ("generator",)
    ema: tuple[str, ...] = ("generator",)

    def __init__(self, config: TrainConfig, data: TrainingData, device: torch.device) -> None:
        self.config, self.data = config, data
        self.options: GANOptions = parse_options(GANOptions, config)
        self.text = TextConditioning(self.options.text_encoder, data.captions, device)
        derived = {"image_size": [config.data.image_size] * 2, "text_dim": self.text.dim}
        self.gan_config: GANConfig = network_config(GANConfig, config.model, derived)
        self.generator, self.discriminator = build_gan(self.gan_config)
        if self.text.module is not None:
            self.shipped = ("generator", "text_encoder")
            self.ema = ("generator", "text_encoder")

    def modules(self) -> dict[str, nn.Module]:
        modules = {"generator": self.generator, "discriminator": self.discriminator}
        if self.text.module is not None:
            modules["text_encoder"] = self.text.module
        return modules

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        betas = tuple(self.options.betas)
        g_params = list(self.generator.parameters())
        if self.text.module is not None:
            g_params += list(self.text.module.parameters())
        return {
            "generator": adam(g_params, self.config.lr, betas),
            "discriminator": adam(
                self.discriminator.parameters(), self.options.disc_lr or self.config.lr, betas
            ),
        }

    def step(self, batch: Batch, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        images = batch["image"]  # (B, 1, H, W) in [-1, 1]
        b = images.shape[0]
        tokens, mask = self.text.encode(batch["text"], ctx.nets)  # (B, T, D), (B, T)
        held = tokens.detach()
        z = torch.randn(b, self.gan_config.noise_dim, device=images.device)
        with torch.no_grad():
            fake = self.generator(z, held, mask)
        wrong = torch.roll(torch.arange(b), 1)  # another sample's caption for each image
        logits = ctx.nets["discriminator"](
            torch.cat([images, fake, images]),
            torch.cat([held, held, held[wrong]]),
            torch.cat([mask, mask, mask[wrong]]),
        )[-1].float()
        real, fake_logits, mismatched = logits.chunk(3)
        w = self.options.mismatch_weight
        d_loss = torch.relu(1 - real).mean() + (
            torch.relu(1 + fake_logits).mean() + w * torch.relu(1 + mismatched).mean()
        ) / (1 + w)
        ctx.update("discriminator", d_loss)

        z = torch.randn(b, self.gan_config.noise_dim, device=images.device)
        fake = ctx.nets["generator"](z, tokens, mask)
        with ctx.frozen("discriminator") as critic:
            g_loss = -critic(fake, tokens, mask)[-1].float().mean()
        ctx.update("generator", g_loss)
        return {"loss": g_loss.detach(), "d_loss": d_loss.detach(), "d_real": real.mean().detach()}

    def card(self, shipped: Mapping[str, nn.Module]) -> dict[str, Any]:
        config = {"gan": self.gan_config.to_dict(), "text_encoder": self.text.config()}
        return {"config": config, "task_info": image_fields(self.config, self.data)}
