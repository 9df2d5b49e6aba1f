"""Smoke check of the speed benchmark's correctness: radsynth's fast path (fused attention,
inference mode, mixed-prompt batches) and the MONAI and diffusers reference loops sample
the same distribution. The network is the exact v-prediction for Gaussian data, so every
solver has a known answer; no timing is asserted."""

import pytest
import torch
from torch import nn

from radsynth.bench.references import LatentModel, diffusers_sample, monai_sample, monai_scheduler
from radsynth.models.diffusion import NoiseSchedule
from radsynth.models.intensity import to_unit_range
from radsynth.sampling import GenerationPipeline
from radsynth.sampling.inference import attention_blocks, fused_attention

from .test_solvers import GaussianOracle

PROMPTS = ["axial chest CT, lung window", "axial T1-weighted brain MR"] * 4
SEEDS = list(range(8))


class OracleUNet(nn.Module):
    """``GaussianOracle`` with the UNet's signature; MONAI passes one timestep for the batch."""

    def __init__(self, schedule: NoiseSchedule) -> None:
        super().__init__()
        self.oracle = GaussianOracle(schedule)

    def forward(self, x, timesteps, context=None):
        return self.oracle(x, timesteps.expand(x.shape[0]), context, None)


class IdentityDecoder(nn.Module):
    """Latents are the images: the samplers' answer is seen without a VAE in between."""

    def decode_stage_2_outputs(self, z):
        return z


@pytest.fixture
def oracle_setup(card, text_encoder):
    schedule = NoiseSchedule()
    modules = {"vae": IdentityDecoder(), "unet": OracleUNet(schedule)}
    pipeline = GenerationPipeline.from_modules(
        modules, card("ldm"), text_encoder=text_encoder, fast_attention=True
    )
    ref = LatentModel(
        unet=modules["unet"],
        vae=modules["vae"],
        schedule=schedule,
        text_encoder=text_encoder,
        latent_shape=pipeline.generator.vae_config.latent_shape(pipeline.image_size),
        latent_scale=pipeline.generator.vae_config.latent_scale,
        device=torch.device("cpu"),
    )
    return pipeline, ref


@pytest.mark.slow  # samples through MONAI's and diffusers' reference loops
def test_fast_path_and_references_sample_the_same_distribution(oracle_setup):
    pipeline, ref = oracle_setup
    exact = to_unit_range(ref.unet.oracle.exact(ref.noise(SEEDS), torch.tensor([999])).float())
    ours = pipeline.sample(PROMPTS, SEEDS, steps=25)  # (8, C, 8, 8)
    diffusers = diffusers_sample(ref, PROMPTS, SEEDS, 25, guidance=4.0)
    ddim = monai_sample(ref, PROMPTS, SEEDS, monai_scheduler("ddim", ref.schedule, 50), guidance=4.0)
    ddpm = monai_sample(ref, PROMPTS, SEEDS, monai_scheduler("ddpm", ref.schedule, 1000), guidance=4.0)
    # the same solver (DPM-Solver++ 2M) at the same steps: the same images, spacing aside
    torch.testing.assert_close(ours, diffusers, atol=5e-3, rtol=0)
    # deterministic solvers map the same noise near the exact ODE solution
    for images in (ours, ddim):
        assert (images - exact).abs().mean() < 0.02
    # ancestral DDPM draws other images, from the same distribution
    assert (ddpm - exact).abs().mean() > 0.1
    for images in (ours, diffusers, ddim, ddpm):
        assert abs(float(images.mean() - exact.mean())) < 0.02
        assert abs(float(images.std() - exact.std())) < 0.03


def test_mixed_prompt_batch_equals_each_image_alone(tiny_modules, card):
    pipeline = GenerationPipeline.from_modules(
        tiny_modules, card("ldm", sampling={"steps": 3}), fast_attention=True
    )
    batch = pipeline.sample(PROMPTS[:3], [5, 6, 7])
    alone = pipeline.generate(PROMPTS[1], n=1, seed=6)[0].array
    torch.testing.assert_close(batch[1, 0], torch.from_numpy(alone), atol=1e-5, rtol=0)
    assert not torch.allclose(batch[0], batch[1])


def test_fused_attention_is_the_same_function_and_is_restored(tiny_modules):
    unet = tiny_modules["unet"]
    blocks = attention_blocks([unet])
    assert blocks and not any(b.use_flash_attention for b in blocks)
    x, t, ctx = torch.randn(2, 2, 8, 8), torch.tensor([10.0, 900.0]), torch.randn(2, 16, 16)
    with torch.no_grad():
        plain = unet(x, t, ctx)
        with fused_attention([unet]):
            assert all(b.use_flash_attention for b in blocks)
            fused = unet(x, t, ctx)
    assert not any(b.use_flash_attention for b in blocks)
    torch.testing.assert_close(fused, plain, atol=1e-5, rtol=1e-5)
