"""The KL autoencoder: L1 reconstruction + KL + patch adversarial (Rombach et al. 2022,
§3 and Appendix G; Esser et al. 2021, "Taming Transformers", eq. 4-5).

Generator loss ``|x - x_hat|_1 + kl_weight * KL + adv_weight * L_adv(D(x_hat))`` and a
least-squares patch discriminator (Mao et al. 2017), both adversarial terms off for the
first ``adversarial_start`` steps so the discriminator meets sensible reconstructions
rather than noise. No perceptual loss: it would need downloaded weights.

The card's ``config.vae.latent_scale`` is ``1 / std`` of the latents of the first
``scale_images`` training images (Rombach et al. 2022, §4.3.2), measured on the shipped
(EMA) weights, so the latent diffusion model sees roughly unit-variance latents.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from radsynth.models.vae import VAEConfig, build_vae, build_vae_discriminator
from radsynth.train.config import TrainConfig
from radsynth.train.data import ManifestDataset, TrainingData
from radsynth.train.task import Batch, StepContext
from radsynth.train.tasks.common import adam, image_fields, network_config, parse_options


@dataclass(frozen=True)
class VAEOptions:
    """Loss weights, the adversarial warm-up (steps) and the discriminator's learning rate
    (default: the recipe's ``lr``)."""

    kl_weight: float = 1.0e-6
    adversarial_weight: float = 0.01
    adversarial_start: int = 500
    disc_lr: float | None = None
    scale_images: int = 64


def kl_divergence(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) summed over latent elements, mean over the batch."""
    kl = 0.5 * (mu.pow(2) + sigma.pow(2) - torch.log(sigma.pow(2) + 1e-12) - 1)  # (B, C, *latent)
    return kl.flatten(1).sum(dim=1).mean()


def latent_scale(mu: torch.Tensor, sigma: torch.Tensor, seed: int = 0) -> float:
    """``1 / std`` of latent samples ``mu + sigma * eps`` (noise from a fixed seed)."""
    eps = torch.randn(mu.shape, generator=torch.Generator().manual_seed(seed)).to(mu.device)
    return float(1.0 / (mu.float() + sigma.float() * eps).std().clamp(min=1e-6))


@torch.no_grad()
def measure_latent_scale(vae: nn.Module, images: torch.Tensor, chunk: int = 32) -> float:
    """:func:`latent_scale` of the encoder's latents of ``images``, in float32."""
    encoded = [vae.encode(images[i : i + chunk]) for i in range(0, images.shape[0], chunk)]
    return latent_scale(torch.cat([mu for mu, _ in encoded]), torch.cat([s for _, s in encoded]))


class VAETask:
    shipped = ("vae",)
    ema = ("vae",)

    def __init__(self, config: TrainConfig, data: TrainingData, device: torch.device) -> None:
        self.config, self.data, self.device = config, data, device
        self.options: VAEOptions = parse_options(VAEOptions, config)
        self.vae_config: VAEConfig = network_config(VAEConfig, config.model, {})
        self.vae_config.latent_shape((config.data.image_size,) * self.vae_config.spatial_dims)
        self.vae = build_vae(self.vae_config)
        self.discriminator = build_vae_discriminator(self.vae_config)

    def modules(self) -> dict[str, nn.Module]:
        return {"vae": self.vae, "discriminator": self.discriminator}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        disc_lr = self.options.disc_lr or self.config.lr
        return {
            "vae": adam(self.vae.parameters(), self.config.lr),
            "discriminator": adam(self.discriminator.parameters(), disc_lr, betas=(0.5, 0.999)),
        }

    def step(self, batch: Batch, ctx: StepContext) -> dict[str, torch.Tensor | float]:
        images = batch["image"]  # (B, 1, H, W) in [-1, 1]
        recon, mu, sigma = ctx.nets["vae"](images)
        recon = recon.float()
        l1 = (recon - images).abs().mean()
        kl = kl_divergence(mu.float(), sigma.float())
        loss = l1 + self.options.kl_weight * kl
        adversarial = ctx.step >= self.options.adversarial_start and self.options.adversarial_weight > 0
        g_adv = d_loss = torch.zeros((), device=images.device)
        if adversarial:
            with ctx.frozen("discriminator") as critic:
                g_adv = (critic(recon)[-1].float() - 1).pow(2).mean()  # least squares: fool D
            loss = loss + self.options.adversarial_weight * g_adv
        ctx.update("vae", loss)
        if adversarial:
            logits = ctx.nets["discriminator"](torch.cat([images, recon.detach()]))[-1].float()
            real, fake = logits.chunk(2)  # (B, 1, h, w) each
            d_loss = 0.5 * ((real - 1).pow(2).mean() + fake.pow(2).mean())
            ctx.update("discriminator", d_loss)
        return {
            "loss": loss.detach(),
            "l1": l1.detach(),
            "kl": kl.detach(),
            "g_adv": g_adv.detach(),
            "d_loss": d_loss.detach(),
        }

    def card(self, shipped: Mapping[str, nn.Module]) -> dict[str, Any]:
        vae = shipped["vae"]
        dataset = ManifestDataset(self.data, self.config.data.image_size, self.config.data.fit)
        count = min(self.options.scale_images, len(dataset))
        images = torch.stack([dataset[i]["image"] for i in range(count)]).to(self.device)
        scale = measure_latent_scale(vae, images)
        vae_config = dataclasses.replace(self.vae_config, latent_scale=round(scale, 6))
        return {"config": {"vae": vae_config.to_dict()}, "task_info": image_fields(self.config, self.data)}
