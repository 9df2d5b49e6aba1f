"""Tiny models shared by the guidance and pipeline tests."""

import pytest
import torch

from radsynth.models import (
    Denoiser,
    GANConfig,
    NoiseSchedule,
    UNetConfig,
    VAEConfig,
    build_gan,
    build_unet,
    build_vae,
)
from radsynth.models.card import Card
from radsynth.text import LearnedEncoder

CAPTIONS = [
    "axial chest CT, lung window, mid thorax, tumour in the right lung, 23 mm",
    "axial T1-weighted brain MR, middle third of the brain, lesion in the left hemisphere, 12 mm",
    "axial head CT, brain window, upper third of the head, no lesion visible",
] * 2

TEXT_DIM = 16
VAE = VAEConfig(
    channels=(8, 8), attention_levels=(False, False), num_res_blocks=1, latent_channels=2, norm_num_groups=4
)
UNET = UNetConfig(
    in_channels=2,
    out_channels=2,
    channels=(8, 16),
    attention_levels=(False, True),
    num_head_channels=8,
    cross_attention_dim=TEXT_DIM,
    norm_num_groups=4,
)
GAN = GANConfig(
    image_size=(16, 16), noise_dim=8, text_dim=TEXT_DIM, cond_dim=8, channels=(16, 8, 8), norm_num_groups=4
)


@pytest.fixture(scope="session")
def text_encoder():
    torch.manual_seed(0)
    return LearnedEncoder.from_captions(CAPTIONS, dim=TEXT_DIM, heads=2, max_length=16).eval()


def perturbed(module: torch.nn.Module) -> torch.nn.Module:
    """MONAI zero-initialises output and residual convolutions, so a fresh UNet predicts 0
    everywhere and ignores its inputs; jitter every weight so the tests see a real function."""
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return module.eval()


@pytest.fixture(scope="session")
def tiny_modules(text_encoder):
    torch.manual_seed(0)
    return {
        "vae": perturbed(build_vae(VAE)),
        "unet": perturbed(build_unet(UNET)),
        "generator": perturbed(build_gan(GAN)[0]),
        "text_encoder": text_encoder,
    }


@pytest.fixture
def denoiser(tiny_modules):
    return Denoiser(tiny_modules["unet"], NoiseSchedule())


@pytest.fixture(scope="session")
def captions():
    return CAPTIONS


@pytest.fixture(scope="session")
def card():
    """A typed card for a tiny model: ``card(kind, **task_info)``."""
    return lambda kind, **extra: Card.from_dict(make_card_json(kind, **extra))


@pytest.fixture(scope="session")
def card_json():
    """The same card as ``card.json`` holds it: ``card_json(kind, **task_info)``."""
    return make_card_json


def make_card_json(kind: str, **extra) -> dict:
    config = {
        "ldm": {
            "vae": VAE.to_dict(),
            "unet": UNET.to_dict(),
            "noise": {},
            "text_encoder": {"kind": "learned"},
        },
        "gan": {"gan": GAN.to_dict(), "text_encoder": {"kind": "learned"}},
        "vae": {"vae": VAE.to_dict()},
    }[kind]
    info = {"image": {"size": [16, 16], "spacing": [0.7, 0.8]}, **extra}
    return {"task": kind, "model_id": f"test-{kind}", "config": config, "task_info": info}
