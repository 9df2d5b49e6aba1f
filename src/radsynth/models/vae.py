"""The KL autoencoder (Rombach et al. 2022, "High-Resolution Image Synthesis with Latent
Diffusion Models", §3) that compresses images into the latent space of the diffusion UNet,
and its patch discriminator (Isola et al. 2017) for the adversarial part of its loss.

Default demo model: 1 x 64 x 64 image -> 4 x 16 x 16 latent (two downsamplings), about
1.1 M parameters (4.5 MB fp32). ``spatial_dims=3`` gives the same model for volumes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from radsynth.models.config import Config, check, check_groups, check_spatial_dims

if TYPE_CHECKING:  # MONAI is imported where a network is built (inference loads exports)
    from monai.networks.nets import AutoencoderKL, PatchDiscriminator


@dataclass(frozen=True)
class VAEConfig(Config):
    """``AutoencoderKL`` settings, plus the latent scale and the discriminator's size.

    ``latent_scale`` multiplies encoder latents before diffusion and divides them before
    decoding, so the diffusion model sees roughly unit-variance latents (Rombach et al.
    2022, §4.3.2 and Appendix G: "we rescale the latents by the component-wise standard
    deviation"). The VAE training task measures 1 / std on training latents and stores it
    with ``dataclasses.replace`` in the card; 1.0 means "not measured".
    """

    spatial_dims: int = 2
    in_channels: int = 1
    out_channels: int = 1
    channels: tuple[int, ...] = (32, 64, 64)
    num_res_blocks: int = 2
    attention_levels: tuple[bool, ...] = (False, False, False)
    latent_channels: int = 4
    norm_num_groups: int = 32
    with_encoder_nonlocal_attn: bool = True
    with_decoder_nonlocal_attn: bool = True
    latent_scale: float = 1.0
    disc_channels: int = 32
    disc_layers: int = 3

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_spatial_dims(owner, self.spatial_dims)
        check(len(self.channels) >= 1, owner, "channels", "needs at least one level")
        check(
            len(self.attention_levels) == len(self.channels),
            owner,
            "attention_levels",
            f"needs one flag per level of channels ({len(self.channels)}), got {len(self.attention_levels)}",
        )
        check_groups(owner, "channels", self.channels, self.norm_num_groups)
        check(self.latent_channels >= 1, owner, "latent_channels", "must be >= 1")
        check(self.latent_scale > 0, owner, "latent_scale", f"must be > 0, got {self.latent_scale}")
        check(self.num_res_blocks >= 1, owner, "num_res_blocks", "must be >= 1")

    @property
    def downsample_factor(self) -> int:
        """Image size / latent size along each axis."""
        return 2 ** (len(self.channels) - 1)

    def latent_shape(self, image_size: tuple[int, ...]) -> tuple[int, ...]:
        """(C, *spatial) of the latent of an image of spatial size ``image_size``."""
        check(
            len(image_size) == self.spatial_dims,
            type(self).__name__,
            "spatial_dims",
            f"is {self.spatial_dims} but image_size {image_size} has {len(image_size)} axes",
        )
        f = self.downsample_factor
        bad = [s for s in image_size if s % f]
        check(not bad, "image", "size", f"{image_size} must be divisible by {f} (the VAE downsampling)")
        return (self.latent_channels, *(s // f for s in image_size))


def build_vae(config: VAEConfig) -> AutoencoderKL:
    """The MONAI ``AutoencoderKL`` for ``config`` (randomly initialised)."""
    from monai.networks.nets import AutoencoderKL

    return AutoencoderKL(
        spatial_dims=config.spatial_dims,
        in_channels=config.in_channels,
        out_channels=config.out_channels,
        channels=config.channels,
        num_res_blocks=config.num_res_blocks,
        attention_levels=config.attention_levels,
        latent_channels=config.latent_channels,
        norm_num_groups=config.norm_num_groups,
        with_encoder_nonlocal_attn=config.with_encoder_nonlocal_attn,
        with_decoder_nonlocal_attn=config.with_decoder_nonlocal_attn,
    )


def build_vae_discriminator(config: VAEConfig) -> PatchDiscriminator:
    """Unconditional ``PatchDiscriminator`` for the VAE's adversarial loss (training only).

    Its forward returns MONAI's list of intermediate features, the last being the patch
    logits, so the training task can add a feature-matching term if it wants one.
    """
    from monai.networks.nets import PatchDiscriminator

    return PatchDiscriminator(
        spatial_dims=config.spatial_dims,
        channels=config.disc_channels,
        in_channels=config.out_channels,
        num_layers_d=config.disc_layers,
    )
