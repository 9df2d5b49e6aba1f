"""The reference pipelines radsynth is measured against, written the way their own
libraries' tutorials and pipelines write them, on radsynth's trained networks.

- **MONAI**: ``LatentDiffusionInferer.sample`` with ``DDPMScheduler`` (1000 ancestral
  steps) or ``DDIMScheduler`` (50 steps), as MONAI's 2D latent-diffusion tutorial samples,
  with classifier-free guidance through the inferer's own ``cfg`` argument (MONAI >= 1.4:
  one forward on ``[uncond, cond]`` concatenated, ``uncond + cfg * (cond - uncond)``). The
  schedulers get our training parameterisation: the same betas, ``v_prediction``, and
  ``clip_sample=False`` (the tutorial's default clips x0 to [-1, 1], which is for pixels,
  not for unit-variance latents: it would cost the reference fidelity, not time).
- **diffusers**: the denoising loop of diffusers' text-to-image pipelines
  (``StableDiffusionPipeline.__call__``): ``DPMSolverMultistepScheduler`` with its
  default settings on our betas and ``v_prediction``, ``init_noise_sigma``,
  ``scale_model_input``, ``[uncond, cond]`` concatenated, ``scheduler.step`` and a VAE
  decode of ``latents / scaling_factor``, under ``torch.no_grad``.

For a rectified-flow model (``noise.kind: rflow``, e.g. the chest X-ray LDM) the same roles
are played by each library's flow sampler: MONAI's ``RFlowScheduler`` (Euler steps, its
tutorial's defaults) in the same inferer at the DDIM and DDPM rows' step counts, and diffusers'
``FlowMatchEulerDiscreteScheduler`` in the loop of its flow pipelines
(``StableDiffusion3Pipeline.__call__``: no input scaling, timesteps ``1000 * sigma``). MONAI's
flow convention predicts ``x0 - noise`` (its tutorial's training target), radsynth's and
diffusers' ``noise - x0``: the MONAI rows see the network with its sign flipped.

All use the modules as the checkpoint builds them (no radsynth inference settings) and
the per-sample noise radsynth uses, so the same seeds start from the same latents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from radsynth.models.diffusion import NoiseSchedule
from radsynth.models.intensity import to_unit_range
from radsynth.sampling.seeds import generators, randn_per_sample
from radsynth.text.base import TextEncoder

MONAI_BETAS = {"scaled_linear": "scaled_linear_beta", "linear": "linear_beta", "cosine": "cosine"}
CFG_FILL = -1.0  # MONAI's default fill value for the unconditional context


@dataclass
class LatentModel:
    """What a reference needs from a trained LDM: networks, schedule, latent geometry."""

    unet: nn.Module
    vae: nn.Module
    schedule: NoiseSchedule
    text_encoder: TextEncoder
    latent_shape: tuple[int, ...]
    latent_scale: float
    device: torch.device

    def noise(self, seeds: Sequence[int]) -> torch.Tensor:
        """radsynth's per-sample initial latents, (B, C, *latent)."""
        return randn_per_sample(self.latent_shape, generators(seeds), self.device)

    def contexts(self, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Text tokens of the prompts (B, T, D) and of the empty prompt (1, T, D)."""
        tokens, _ = self.text_encoder.encode(list(prompts))
        empty, _ = self.text_encoder.encode([""])
        return tokens.to(self.device), empty.to(self.device)


class EmptyPromptUncond(nn.Module):
    """The UNet as MONAI's ``cfg`` sampling calls it, with the constant-filled unconditional
    context MONAI builds replaced by the empty prompt's encoding, which is what the network
    saw for dropped captions in training (a constant fill would be an input it never saw)."""

    def __init__(self, unet: nn.Module, empty: torch.Tensor, sign: float = 1.0) -> None:
        super().__init__()
        self.unet, self.empty, self.sign = unet, empty, sign  # empty: (1, T, D)

    def forward(self, x: torch.Tensor, timesteps: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        filled = (context == CFG_FILL).flatten(1).all(1)  # (2B,) rows MONAI filled
        context = torch.where(filled[:, None, None], self.empty.to(context), context)
        out = self.unet(x, timesteps=timesteps, context=context)
        return out if self.sign == 1.0 else self.sign * out


def monai_scheduler(name: str, schedule: NoiseSchedule, steps: int):
    """MONAI's ``DDPMScheduler`` or ``DDIMScheduler`` on our VP schedule (``name``), or its
    ``RFlowScheduler`` for a rectified-flow schedule (either name), timesteps set."""
    from monai.networks.schedulers import DDIMScheduler, DDPMScheduler, RFlowScheduler

    c = schedule.config
    if c.kind == "rflow":
        flow = RFlowScheduler(num_train_timesteps=c.num_train_timesteps)
        flow.set_timesteps(num_inference_steps=steps)
        return flow
    kind = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler}[name]
    scheduler = kind(
        num_train_timesteps=c.num_train_timesteps,
        schedule=MONAI_BETAS[c.beta_schedule],
        beta_start=c.beta_start,
        beta_end=c.beta_end,
        prediction_type=schedule.prediction_type,
        clip_sample=False,
    )
    scheduler.set_timesteps(num_inference_steps=steps)
    return scheduler


def monai_sample(
    model: LatentModel, prompts: Sequence[str], seeds: Sequence[int], scheduler, guidance: float
) -> torch.Tensor:
    """Pixels (B, 1, *size) in [0, 1] from MONAI's ``LatentDiffusionInferer.sample``."""
    from monai.inferers import LatentDiffusionInferer

    context, empty = model.contexts(prompts)
    inferer = LatentDiffusionInferer(scheduler, scale_factor=model.latent_scale)
    torch.manual_seed(int(seeds[0]))  # DDPM's ancestral noise comes from the global generator
    sign = -1.0 if model.schedule.config.kind == "rflow" else 1.0  # MONAI's flow: x0 - noise
    images = inferer.sample(
        input_noise=model.noise(seeds),
        autoencoder_model=model.vae,
        diffusion_model=EmptyPromptUncond(model.unet, empty, sign),
        scheduler=scheduler,
        conditioning=context,
        verbose=False,
        cfg=guidance,
        cfg_fill_value=CFG_FILL,
    )
    return to_unit_range(images.float())


@torch.no_grad()
def diffusers_sample(
    model: LatentModel, prompts: Sequence[str], seeds: Sequence[int], steps: int, guidance: float
) -> torch.Tensor:
    """Pixels (B, 1, *size) in [0, 1] from diffusers' pipeline loop: DPM-Solver++ for a VP
    model, flow-matching Euler for a rectified-flow one."""
    from diffusers import DPMSolverMultistepScheduler, FlowMatchEulerDiscreteScheduler

    flow = model.schedule.config.kind == "rflow"
    if flow:
        scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=model.schedule.num_train_timesteps)
    else:
        scheduler = DPMSolverMultistepScheduler(**model.schedule.diffusers_config())
    scheduler.set_timesteps(steps, device=model.device)
    context, empty = model.contexts(prompts)
    b = context.shape[0]
    prompt_embeds = torch.cat([empty.expand(b, -1, -1), context])  # (2B, T, D): [uncond, cond]
    latents = model.noise(seeds) if flow else model.noise(seeds) * scheduler.init_noise_sigma
    for t in scheduler.timesteps:
        latent_model_input = torch.cat([latents] * 2)  # (2B, C, ...)
        if not flow:  # the flow pipelines feed the latents unscaled
            latent_model_input = scheduler.scale_model_input(latent_model_input, t)
        # diffusers' UNet2DConditionModel broadcasts a scalar t over the batch inside; MONAI's wants (2B,)
        noise_pred = model.unet(latent_model_input, t.expand(2 * b), prompt_embeds)
        noise_pred_uncond, noise_pred_text = noise_pred.chunk(2)
        noise_pred = noise_pred_uncond + guidance * (noise_pred_text - noise_pred_uncond)
        latents = scheduler.step(noise_pred, t, latents).prev_sample
    images = model.vae.decode_stage_2_outputs(latents / model.latent_scale)
    return to_unit_range(images.float())
