"""Every network builds and runs forward in 2D and 3D at tiny sizes; defaults stay small."""

import pytest
import torch

from radsynth.models import (
    GANConfig,
    UNetConfig,
    VAEConfig,
    build_gan,
    build_unet,
    build_vae,
    build_vae_discriminator,
)


def size(dims: int, n: int) -> tuple[int, ...]:
    return (n,) * dims


@pytest.mark.parametrize("dims", [2, pytest.param(3, marks=pytest.mark.slow)])
def test_vae_encodes_decodes_and_discriminates(dims):
    config = VAEConfig(
        spatial_dims=dims,
        channels=(8, 16),
        attention_levels=(False, False),
        num_res_blocks=1,
        latent_channels=2,
        norm_num_groups=4,
        disc_channels=4,
        disc_layers=2,
    )
    vae, disc = build_vae(config), build_vae_discriminator(config)
    x = torch.rand(2, 1, *size(dims, 16))
    with torch.no_grad():
        recon, mu, sigma = vae(x)
        z = vae.encode_stage_2_inputs(x)
        logits = disc(x)[-1]
    assert recon.shape == x.shape
    assert z.shape == (2, *config.latent_shape(size(dims, 16)))
    assert mu.shape == sigma.shape == z.shape
    assert logits.shape[:2] == (2, 1)


@pytest.mark.parametrize("dims", [2, pytest.param(3, marks=pytest.mark.slow)])
def test_unet_with_cross_attention_keeps_shape(dims):
    config = UNetConfig(
        spatial_dims=dims,
        in_channels=2,
        out_channels=2,
        channels=(8, 16),
        attention_levels=(False, True),
        num_head_channels=8,
        cross_attention_dim=12,
        norm_num_groups=4,
    )
    unet = build_unet(config)
    x = torch.randn(2, 2, *size(dims, 8))
    with torch.no_grad():
        out = unet(x, torch.tensor([3.0, 700.0]), torch.randn(2, 5, 12))
    assert out.shape == x.shape


@pytest.mark.parametrize("dims", [2, pytest.param(3, marks=pytest.mark.slow)])
def test_conditional_gan_generates_and_scores(dims):
    config = GANConfig(
        spatial_dims=dims,
        image_size=size(dims, 16),
        noise_dim=8,
        text_dim=12,
        cond_dim=8,
        channels=(16, 8, 8),
        norm_num_groups=4,
        disc_channels=4,
        disc_layers=2,
        disc_text_channels=3,
    )
    gen, disc = build_gan(config)
    context, mask = torch.randn(2, 5, 12), torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    with torch.no_grad():
        images = gen(torch.randn(2, 8), context, mask)
        logits = disc(images, context, mask)[-1]
    assert images.shape == (2, 1, *size(dims, 16))
    assert images.abs().max() <= 1  # tanh: the networks' [-1, 1] range
    assert logits.shape[:2] == (2, 1)


def test_gan_generator_sees_the_text():
    config = GANConfig(
        image_size=(16, 16), noise_dim=8, text_dim=12, cond_dim=8, channels=(16, 8, 8), norm_num_groups=4
    )
    gen, _ = build_gan(config)
    z = torch.randn(1, 8)
    with torch.no_grad():
        a, b = gen(z, torch.randn(1, 3, 12)), gen(z, torch.randn(1, 3, 12))
    assert not torch.allclose(a, b)


def test_default_demo_models_are_small():
    """Weights of every default model (fp32) stay well under the 30 MB per checkpoint."""
    counts = {
        "vae": build_vae(VAEConfig()),
        "unet": build_unet(UNetConfig()),
        "gan_generator": build_gan(GANConfig())[0],
    }
    mb = {name: 4 * sum(p.numel() for p in m.parameters()) / 1e6 for name, m in counts.items()}
    assert mb["vae"] + mb["unet"] < 30, mb  # the LDM checkpoint holds both
    assert mb["gan_generator"] < 30, mb
