"""Latent diffusion (Rombach et al. 2022): a text-conditioned ``DiffusionModelUNet`` on the
latents of a frozen, already trained VAE, with classifier-free guidance training.

Loss: ``|| D(x_t, t, c) - target(x0, eps, t) ||^2`` where ``x_t = add_noise(x0, eps, t)``
and the target (epsilon, v or velocity) comes from the noise schedule; the task never
asks which. ``x0`` is a latent sample ``(mu + sigma * eps') * latent_scale``. Captions are
replaced by "" with probability ``caption_dropout`` (Ho & Salimans 2022, §3.2), so the one
network also learns the unconditional model that guidance needs.

Guidance distillation (Meng et al. 2023, "On distillation of guided diffusion models",
stage one): with ``options.distill = {teacher, guidance}`` the target is no longer the
schedule's but the teacher's guided output ``u + w (c - u)`` at the same ``x_t`` (one
batched no-grad teacher forward for both halves), and the student starts from the
teacher's weights. The student then samples with one network row per image and step
instead of two, at the guidance scale it was distilled at.

Every training image's latent mean and spread are computed once, up front, with the
frozen encoder in float32 (fixed chunks, so the numbers do not depend on batching or on
resuming); a step then costs only the UNet. The VAE is shipped inside the checkpoint, so
generation loads one folder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from radsynth.errors import InvalidInput
from radsynth.models.card import Card
from radsynth.models.checkpoint import load_checkpoint, load_into
from radsynth.models.diffusion import Denoiser, NoiseConfig, NoiseSchedule
from radsynth.models.registry import load_pretrained, read_card
from radsynth.models.unet import UNetConfig, build_unet
from radsynth.models.vae import VAEConfig
from radsynth.sampling.guidance import ClassifierFreeGuidance
from radsynth.train.config import TrainConfig
from radsynth.train.data import ManifestDataset, TrainingData
from radsynth.train.task import Batch, LossTask
from radsynth.train.tasks.common import TextConditioning, adam, image_fields, network_config, parse_options
from radsynth.train.tasks.vae import latent_scale


@dataclass(frozen=True)
class DistillOptions:
    """``teacher``: an LDM checkpoint folder whose guided output the student learns;
    ``guidance``: the scale distilled in (the student samples at this scale only)."""

    teacher: str
    guidance: float = 4.0

    def __post_init__(self) -> None:
        if not self.guidance >= 1:
            raise InvalidInput(f"options.distill.guidance must be >= 1, got {self.guidance}")


@dataclass(frozen=True)
class LDMOptions:
    """``vae``: folder of a trained VAE checkpoint (``<run>/model``) or of an LDM whose VAE
    is reused (e.g. the shipped one a distillation starts from). ``latent_scale``:
    overrides the VAE card's measured scale (measured here when neither gives one).
    ``noise``: a ``NoiseConfig``. ``sampling``: generation defaults written to the card
    (``sampler``, ``steps``, ``guidance``). ``distill``: a ``DistillOptions`` (guidance
    distillation of a trained LDM; the UNet and noise settings then come from the teacher)."""

    vae: str
    text_encoder: dict[str, Any] = field(default_factory=lambda: {"kind": "minilm"})
    caption_dropout: float = 0.15
    noise: dict[str, Any] = field(default_factory=dict)
    latent_scale: float | None = None
    sampling: dict[str, Any] = field(default_factory=dict)
    distill: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.distill is not None:
            object.__setattr__(self, "distill", DistillOptions(**self.distill))
        if not 0 <= self.caption_dropout < 1:
            raise InvalidInput(f"options.caption_dropout must be in [0, 1), got {self.caption_dropout}")


def load_frozen_vae(folder: str | Path) -> tuple[nn.Module, VAEConfig, Card]:
    """The VAE of a ``vae`` checkpoint, or the VAE an ``ldm`` checkpoint carries (with the
    latent scale that LDM learnt on), frozen, with its config and card. The LDM form lets a
    user distill or fine-tune a shipped LDM without the VAE's training run."""
    task = read_card(folder).task
    if task not in ("vae", "ldm"):
        raise InvalidInput(
            f"options.vae must be a VAE checkpoint (or an LDM carrying one), this one is {task!r}",
            folder,
        )
    pretrained = load_pretrained(folder)
    vae_config = VAEConfig.from_dict(pretrained.card.section("vae"))
    return pretrained.modules["vae"].requires_grad_(False), vae_config, pretrained.card


def load_teacher(options: LDMOptions) -> tuple[nn.Module, Card]:
    """(UNet, card) of the LDM to distill, checked to share the student's frozen text encoder."""
    where = options.distill.teacher
    if read_card(where).task != "ldm":
        raise InvalidInput("options.distill.teacher must be an LDM checkpoint", where)
    pretrained = load_pretrained(where)
    kind = pretrained.card.section("text_encoder").get("kind")
    if kind != options.text_encoder.get("kind") or kind == "learned":
        raise InvalidInput(
            "distillation needs the teacher's frozen text encoder in options.text_encoder", where
        )
    return pretrained.modules["unet"], pretrained.card


class LDMTask(LossTask):
    shipped: tuple[str, ...] = ("unet", "vae")
    ema: tuple[str, ...] = ("unet",)

    def __init__(self, config: TrainConfig, data: TrainingData, device: torch.device) -> None:
        self.config, self.data, self.device = config, data, device
        self.options: LDMOptions = parse_options(LDMOptions, config)
        self.teacher: Denoiser | None = None
        teacher, teacher_card = load_teacher(self.options) if self.options.distill else (None, None)
        noise = teacher_card.section("noise") if teacher_card else dict(self.options.noise)
        self.schedule = NoiseSchedule(NoiseConfig.from_dict(noise))
        self.vae, vae_config, vae_card = load_frozen_vae(self.options.vae)
        self.vae_source = {"folder": self.options.vae, "model_id": vae_card.model_id}
        self.latent_shape = vae_config.latent_shape((config.data.image_size,) * vae_config.spatial_dims)
        self.text = TextConditioning(self.options.text_encoder, data.captions, device)
        derived = {
            "spatial_dims": vae_config.spatial_dims,
            "in_channels": vae_config.latent_channels,
            "out_channels": vae_config.latent_channels,
            "cross_attention_dim": self.text.dim,
        }
        if teacher_card is not None:  # the student starts as a copy of the teacher
            self.unet_config = UNetConfig.from_dict(teacher_card.section("unet"))
            self.unet = build_unet(self.unet_config)
            load_into({"unet": self.unet}, {"unet": teacher.state_dict()})
            self.teacher = Denoiser(teacher.to(device).requires_grad_(False), self.schedule)
            self.teacher_id = teacher_card.model_id
        else:
            self.unet_config: UNetConfig = network_config(UNetConfig, config.model, derived)
            self.unet = build_unet(self.unet_config)
        self.mu, self.sigma = self._encode_all()
        scale = self.options.latent_scale or (
            vae_config.latent_scale if vae_config.latent_scale != 1.0 else None
        )
        if scale is None:
            scale = latent_scale(self.mu[:256], self.sigma[:256])
        self.vae_config = dataclasses.replace(vae_config, latent_scale=round(float(scale), 6))
        if self.text.module is not None:
            self.shipped = ("unet", "vae", "text_encoder")
            self.ema = ("unet", "text_encoder")

    @torch.no_grad()
    def _encode_all(self, chunk: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
        """Latent mean and spread of every training image: (N, C, *latent) each, float32."""
        dataset = ManifestDataset(self.data, self.config.data.image_size, self.config.data.fit)
        self.vae.to(self.device)
        mus, sigmas = [], []
        for start in range(0, len(dataset), chunk):
            images = torch.stack(
                [dataset[i]["image"] for i in range(start, min(start + chunk, len(dataset)))]
            )
            mu, sigma = self.vae.encode(images.to(self.device))
            mus.append(mu.float())
            sigmas.append(sigma.float())
        return torch.cat(mus), torch.cat(sigmas)

    def _lookup(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        index = index.to(self.mu.device)
        return self.mu[index], self.sigma[index]

    def modules(self) -> dict[str, nn.Module]:
        modules = {"unet": self.unet, "vae": self.vae}
        if self.text.module is not None:
            modules["text_encoder"] = self.text.module
        return modules

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        params = list(self.unet.parameters())
        if self.text.module is not None:
            params += list(self.text.module.parameters())
        return {"model": adam(params, self.config.lr)}

    def loss(self, batch: Batch, nets: Mapping[str, nn.Module]) -> tuple[torch.Tensor, dict[str, Any]]:
        mu, sigma = self._lookup(batch["index"])  # (B, C, *latent) each
        x0 = (mu + sigma * torch.randn_like(mu)) * self.vae_config.latent_scale
        b = x0.shape[0]
        drop = (torch.rand(b) < self.options.caption_dropout).tolist()
        texts = ["" if d else t for t, d in zip(batch["text"], drop, strict=True)]
        tokens, mask = self.text.encode(texts, nets)  # (B, T, D), (B, T)
        noise = torch.randn_like(x0)
        t = self.schedule.sample_t(b, device=x0.device)
        x_t = self.schedule.add_noise(x0, noise, t)
        output = Denoiser(nets["unet"], self.schedule)(x_t, t, tokens, mask)
        target = (
            self.schedule.training_target(x0, noise, t)
            if self.teacher is None
            else self._guided(x_t, t, tokens, mask)
        )
        return (output.float() - target.float()).pow(2).mean(), {}

    @torch.no_grad()
    def _guided(
        self, x_t: torch.Tensor, t: torch.Tensor, tokens: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """The teacher's classifier-free guided prediction at ``x_t`` (both halves in one
        forward, as sampling guides: ``radsynth.sampling.guidance``)."""
        uncond = self.text.encode([""], {})  # (1, T, D), (1, T): the frozen encoder's ""
        guided = ClassifierFreeGuidance(self.teacher, uncond, self.options.distill.guidance)
        return guided(x_t, t, tokens, mask)

    def card(self, shipped: Mapping[str, nn.Module]) -> dict[str, Any]:
        config = {
            "vae": self.vae_config.to_dict(),
            "unet": self.unet_config.to_dict(),
            "noise": self.schedule.config.to_dict(),
            "text_encoder": self.text.config(),
        }
        info = {
            **image_fields(self.config, self.data),
            "vae_source": self.vae_source,
            "caption_dropout": self.options.caption_dropout,
        }
        if self.options.sampling:
            info["sampling"] = dict(self.options.sampling)
        if self.teacher is not None:
            info["distilled"] = {"teacher": self.teacher_id, "guidance": self.options.distill.guidance}
        return {"config": config, "task_info": info}


DISTILLED_WEIGHTS = "distilled.safetensors"
DISTILLED_CARD = "distilled-card.json"


def attach_distilled(student: str | Path, teacher: str | Path) -> Path:
    """Put a distilled student's UNet (float16) and its card beside its teacher's checkpoint
    and name them in the teacher's card (``task_info.distilled_unet``), so loading the
    teacher samples with the student at the distilled scale. Returns the weights file."""
    import json

    from safetensors.torch import save_file

    from radsynth.io.atomic import atomic_path

    state, card = load_checkpoint(student)
    distilled = (card.get("task_info") or {}).get("distilled")
    if card.get("task") != "ldm" or not distilled:
        raise InvalidInput("not a guidance-distilled LDM checkpoint (no task_info.distilled)", student)
    teacher = Path(teacher)
    _, teacher_card = load_checkpoint(teacher)
    if teacher_card["config"]["unet"] != card["config"]["unet"]:
        raise InvalidInput("the student's UNet config differs from the teacher's", student)
    weights = teacher / DISTILLED_WEIGHTS
    with atomic_path(weights) as tmp:
        save_file({k: v.half().contiguous() for k, v in state["unet"].items()}, str(tmp))
    with atomic_path(teacher / DISTILLED_CARD) as tmp:
        tmp.write_text(json.dumps(card, indent=2) + "\n")
    teacher_card.setdefault("task_info", {})["distilled_unet"] = {
        "file": DISTILLED_WEIGHTS,
        "card": DISTILLED_CARD,
        "guidance": distilled["guidance"],
        "model_id": card.get("model_id"),
        "method": "guidance distillation, Meng et al. 2023 stage one (float16 weights)",
    }
    with atomic_path(teacher / "card.json") as tmp:
        tmp.write_text(json.dumps(teacher_card, indent=2) + "\n")
    return weights
