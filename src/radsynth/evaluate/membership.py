"""Membership inference: can an attacker tell the generator's training images from other
real images of the same kind?

A loss-threshold attack (Yeom et al. 2018; for diffusion models Matsumoto et al. 2023):
a model fits its training images better than unseen ones, so a lower loss says "member".

- LDM: the denoising loss of the image's VAE latent at fixed timesteps with fixed noise
  (``MIA_TIMESTEPS``; small and middle noise levels, where memorisation shows), with the
  image's own caption as conditioning.
- VAE (and the LDM's autoencoder): the L1 reconstruction error of the posterior mean.
- GAN: no loss or reconstruction to threshold (the discriminator is not shipped), so no
  attack is run.

The score is minus the loss; the AUC over members (training images) vs non-members
(held-out real images) is 0.5 when nothing leaks. With held-out images from other
subjects and scanners, a shift in distribution between the two groups also raises the
AUC; it is an upper bound on the leak, not a proof of one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from radsynth.errors import InvalidInput
from radsynth.evaluate.sets import ImageSet, require
from radsynth.evaluate.stats import bootstrap_ci
from radsynth.extras import optional_import
from radsynth.models.diffusion import Cond
from radsynth.models.intensity import to_model_range
from radsynth.sampling.pipeline import GenerationPipeline
from radsynth.sampling.seeds import generators, randn_per_sample

MIA_TIMESTEPS = (50, 100, 200, 300, 400)
MIN_PER_GROUP = 10


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties count half); ValueError when one class is missing."""
    roc_auc_score = optional_import("sklearn.metrics", "eval").roc_auc_score
    return float(roc_auc_score(labels, scores))


@torch.inference_mode()
def reconstruction_loss(pipeline: GenerationPipeline, images: np.ndarray, batch: int = 32) -> np.ndarray:
    """Per image: mean |x - decode(mean of encode(x))| in the model range [-1, 1]."""
    out = []
    for start in range(0, len(images), batch):
        x = to_model_range(torch.from_numpy(images[start : start + batch])[:, None]).to(pipeline.device)
        mu, _ = pipeline.generator.vae.encode(x)
        recon = pipeline.generator.vae.decode(mu)
        out.append((recon - x).abs().flatten(1).mean(1).cpu())
    return torch.cat(out).double().numpy()


@torch.inference_mode()
def denoising_loss(
    pipeline: GenerationPipeline,
    images: np.ndarray,
    captions: tuple[str, ...],
    seed: int = 0,
    batch: int = 32,
) -> np.ndarray:
    """Per image: the LDM's training loss (MSE to the schedule's target) averaged over
    ``MIA_TIMESTEPS``, with noise seeded per (image, timestep): the same at any batch size."""
    ldm = pipeline.generator
    schedule = ldm.denoiser.schedule
    scale = ldm.vae_config.latent_scale
    out = []
    for start in range(0, len(images), batch):
        x = to_model_range(torch.from_numpy(images[start : start + batch])[:, None]).to(pipeline.device)
        z0 = ldm.vae.encode(x)[0] * scale  # (B, C, h, w): posterior mean, as the loss sees it
        tokens, mask = ldm.text_encoder.encode(list(captions[start : start + batch]))
        cond = Cond(tokens.to(pipeline.device), mask.to(pipeline.device))
        losses = []
        for k, step in enumerate(MIA_TIMESTEPS):
            seeds = [seed + 1_000_000 * k + start + i for i in range(len(x))]  # image i, step k
            noise = randn_per_sample(tuple(z0.shape[1:]), generators(seeds), pipeline.device)
            t = torch.full((len(x),), step, device=pipeline.device)
            x_t = schedule.add_noise(z0, noise, t).float()
            prediction = ldm.denoiser(x_t, t, cond.context, cond.mask)
            target = schedule.training_target(z0, noise, t).float()
            losses.append(((prediction - target) ** 2).flatten(1).mean(1))
        out.append(torch.stack(losses, 1).mean(1).cpu())
    return torch.cat(out).double().numpy()


def membership_inference(
    pipeline: GenerationPipeline | None,
    members: ImageSet,
    non_members: ImageSet,
    n_boot: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """Attack AUC (with a 95 % bootstrap interval) for the model's loss and, where it has
    one, its autoencoder's reconstruction error."""
    if pipeline is None:
        return {"skipped": "no model to attack (pass --attack ldm|vae or a checkpoint folder)"}
    if pipeline.kind == "gan":
        return {"skipped": "the GAN has no loss or reconstruction to threshold (discriminator not shipped)"}
    if not hasattr(pipeline.generator.vae, "encode"):
        raise InvalidInput(
            "membership inference needs the eager networks (the VAE's encoder): "
            "load the model with load_pipeline(..., exported=False)"
        )
    require(min(len(members), len(non_members)), MIN_PER_GROUP, "membership inference (per group)")
    labels = np.r_[np.ones(len(members)), np.zeros(len(non_members))]
    attacks = {"vae_reconstruction": lambda s: reconstruction_loss(pipeline, s.images)}
    if pipeline.kind == "ldm":
        attacks["ldm_denoising"] = lambda s: denoising_loss(pipeline, s.images, s.texts, seed)
    out: dict[str, Any] = {
        "model_id": pipeline.model_id,
        "members": len(members),
        "non_members": len(non_members),
    }
    for name, loss in attacks.items():
        scores = -np.r_[loss(members), loss(non_members)]
        out[name] = bootstrap_ci(auroc, [labels, scores], n_boot=n_boot, seed=seed, paired=True)
    return out
