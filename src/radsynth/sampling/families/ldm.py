"""Latent diffusion: text encoder -> guided denoiser (UNet) -> sampler on VAE latents -> VAE decoder.

What it reads from the card beyond the networks' sections: ``config.noise``
(``NoiseConfig``; absent = defaults) and ``task_info.sampling`` = {``sampler``, ``steps``,
``guidance``, ``guidance_interval``}, the defaults of a request that leaves them out; and
``task_info.distilled_unet`` = {``file``, ``guidance``}: a guidance-distilled UNet (Meng et
al. 2023) shipped beside the weights, which gives the guided prediction at scale
``guidance`` in one forward; sampling at that scale (and without a guidance interval)
uses it instead of two guided rows per image.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from radsynth.errors import CheckpointMismatch, InvalidInput
from radsynth.models.card import Card
from radsynth.models.diffusion import Cond, Denoiser, NoiseConfig, NoiseSchedule
from radsynth.models.registry import load_distilled_unet
from radsynth.models.unet import UNetConfig
from radsynth.models.vae import VAEConfig
from radsynth.sampling.families.base import BuildOptions, conditioning, module
from radsynth.sampling.families.vae import decode
from radsynth.sampling.guidance import ClassifierFreeGuidance, check_interval
from radsynth.sampling.samplers import DEFAULT_SAMPLER, get_sampler
from radsynth.sampling.seeds import generators, randn_per_sample
from radsynth.text.base import TextEncoder

MAX_STEPS = 1000


@dataclass(frozen=True)
class SamplingDefaults:
    """What a run uses when the caller leaves ``steps`` / ``guidance`` out;
    ``guidance_interval``: guide only at these timestep fractions (``ClassifierFreeGuidance``)."""

    sampler: str = "dpmpp_2m"
    steps: int = 25
    guidance: float = 4.0
    guidance_interval: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "guidance_interval", check_interval(self.guidance_interval))

    @classmethod
    def from_card(cls, card: Card, schedule_kind: str) -> SamplingDefaults:
        """The card's ``task_info.sampling`` (the sampler defaults to the schedule's own)."""
        sampling = {"sampler": DEFAULT_SAMPLER[schedule_kind], **(card.task_info.get("sampling") or {})}
        unknown = sorted(set(sampling) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise CheckpointMismatch(f"card task_info.sampling has unknown key(s) {', '.join(unknown)}")
        try:
            return cls(**sampling)
        except InvalidInput as err:
            raise CheckpointMismatch(f"card task_info.sampling: {err.problem}") from None


@dataclass
class LatentDiffusion:
    """``compiled``: the UNets run under ``torch.compile`` (one graph per batch shape; the
    first batch pays the compilation, about a minute on 2 CPU cores)."""

    text_encoder: TextEncoder
    vae: nn.Module
    vae_config: VAEConfig
    denoiser: Denoiser
    image_size: tuple[int, ...]
    defaults: SamplingDefaults = field(default_factory=SamplingDefaults)
    distilled: Denoiser | None = None
    distilled_guidance: float | None = None
    compiled: bool = False

    def __post_init__(self) -> None:
        self._check_sampler(self.defaults.sampler)
        if self.compiled:
            for denoiser in (self.denoiser, self.distilled):
                if denoiser is not None:
                    denoiser.network.compile(dynamic=False)

    @classmethod
    def from_card(
        cls,
        card: Card,
        modules: Mapping[str, nn.Module],
        text_encoder: TextEncoder | None,
        options: BuildOptions,
    ) -> LatentDiffusion:
        text_encoder = conditioning(card, modules, text_encoder)
        vae, vae_config = module(modules, "vae"), VAEConfig.from_dict(card.section("vae"))
        UNetConfig.from_dict(card.section("unet"))  # a card that does not parse fails here, not later
        schedule = NoiseSchedule(NoiseConfig.from_dict(card.section("noise", {})))
        denoiser = Denoiser(module(modules, "unet"), schedule)
        info = card.task_info.get("distilled_unet")
        distilled = None
        if options.distilled and info and options.folder is not None:  # False: the guided teacher only
            network = modules.get("distilled")  # the exported one, when loaded from exports
            network = network if network is not None else load_distilled_unet(options.folder, card)
            distilled = Denoiser(network, NoiseSchedule(NoiseConfig.from_dict(card.section("noise", {}))))
        return cls(
            text_encoder=text_encoder,
            vae=vae,
            vae_config=vae_config,
            denoiser=denoiser,
            image_size=card.image_size,
            defaults=SamplingDefaults.from_card(card, schedule.config.kind),
            distilled=distilled,
            distilled_guidance=float(info["guidance"]) if distilled is not None else None,
            compiled=options.compile,
        )

    def modules(self) -> list[nn.Module]:
        return [
            m
            for m in (self.vae, self.denoiser, self.distilled, self.text_encoder)
            if isinstance(m, nn.Module)
        ]

    def use_sampler(self, name: str) -> None:
        """Sample with ``name`` (``ddim``, ``dpmpp_2m``; ``euler`` for rectified flow) from now on."""
        self._check_sampler(name)
        self.defaults = dataclasses.replace(self.defaults, sampler=name)

    def use_guidance_interval(self, interval: tuple[float, float] | None) -> None:
        """Guide only at timestep fractions in ``interval`` from now on (None: every step)."""
        self.defaults = dataclasses.replace(self.defaults, guidance_interval=interval)

    def _check_sampler(self, name: str) -> None:
        get_sampler(name)  # an unknown name fails here, naming the choices
        schedule_kind = self.denoiser.schedule.config.kind
        wanted = DEFAULT_SAMPLER[schedule_kind]
        if (name == "euler") != (wanted == "euler"):
            raise InvalidInput(
                f"sampler {name!r} does not fit the {schedule_kind!r} schedule; use {wanted!r}"
            )

    def uses_distilled(self, guidance: float) -> bool:
        """Whether sampling at ``guidance`` runs the distilled UNet (one row per image)."""
        return (
            self.distilled is not None
            and guidance == self.distilled_guidance
            and self.defaults.guidance_interval is None
        )

    def run(self, steps: int | None, guidance: float | None, device: torch.device) -> _LDMRun:
        steps = self.defaults.steps if steps is None else steps
        guidance = self.defaults.guidance if guidance is None else guidance
        if not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
            raise InvalidInput(f"steps must be an integer in 1..{MAX_STEPS}, got {steps!r}")
        if not guidance >= 0:
            raise InvalidInput(f"guidance must be >= 0, got {guidance!r}")
        interval = self.defaults.guidance_interval
        facts = {
            "steps": steps,
            "guidance": guidance,
            "sampler": self.defaults.sampler,
            "guidance_interval": list(interval) if interval else None,
            "guidance_distilled": self.uses_distilled(guidance),
        }
        return _LDMRun(self, self._guided(guidance, device), steps, device, facts)

    def _guided(self, guidance: float, device: torch.device) -> ClassifierFreeGuidance | Denoiser:
        if self.uses_distilled(guidance):
            return self.distilled
        tokens, mask = self.text_encoder.encode([""])  # the unconditional input seen in training
        return ClassifierFreeGuidance(
            self.denoiser, (tokens.to(device), mask.to(device)), guidance, self.defaults.guidance_interval
        )


@dataclass(frozen=True)
class _LDMRun:
    ldm: LatentDiffusion
    denoiser: ClassifierFreeGuidance | Denoiser
    steps: int
    device: torch.device
    facts: dict[str, Any]

    def __call__(self, cond: Cond, seeds: Sequence[int]) -> torch.Tensor:
        b, gens = len(seeds), generators(seeds)
        latent_shape = self.ldm.vae_config.latent_shape(self.ldm.image_size)
        z = randn_per_sample(latent_shape, gens, self.device)  # (b, C, *latent)
        batch_cond = Cond(cond.context.expand(b, -1, -1), cond.mask.expand(b, -1))  # (b, T, D), (b, T)
        z = get_sampler(self.ldm.defaults.sampler)(self.denoiser, z, self.steps, batch_cond, gens)
        return decode(self.ldm.vae, z / self.ldm.vae_config.latent_scale)
