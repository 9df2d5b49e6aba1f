"""The latent diffusion UNet: MONAI ``DiffusionModelUNet`` with cross-attention to text
token embeddings (Rombach et al. 2022, §3.3, eq. 3).

The network knows nothing about noise schedules: it maps (x_t, model time, context) to
one tensor shaped like x_t. What that tensor means (epsilon, v or velocity) is decided by
:class:`radsynth.models.diffusion.NoiseSchedule` and applied by the ``Denoiser`` wrapper.

Default demo model: 4 x 16 x 16 latents, channels (64, 96, 128) with attention at the 8x8
and 4x4 levels (and the middle block), about 6.0 M parameters (24 MB fp32).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from radsynth.models.config import Config, check, check_groups, check_spatial_dims

if TYPE_CHECKING:  # MONAI is imported where a network is built (inference loads exports)
    from monai.networks.nets import DiffusionModelUNet


@dataclass(frozen=True)
class UNetConfig(Config):
    """``DiffusionModelUNet`` settings.

    ``cross_attention_dim`` must equal the text encoder's ``dim`` (384 for MiniLM); None
    builds an unconditional UNet. The cross-attention has no key-padding mask in MONAI, so
    the text encoders pad to a fixed length with zero vectors (see ``radsynth.text``).
    """

    spatial_dims: int = 2
    in_channels: int = 4
    out_channels: int = 4
    channels: tuple[int, ...] = (64, 96, 128)
    num_res_blocks: int = 1
    attention_levels: tuple[bool, ...] = (False, True, True)
    num_head_channels: int = 32
    cross_attention_dim: int | None = 384
    transformer_num_layers: int = 1
    norm_num_groups: int = 32
    use_flash_attention: bool = False

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_spatial_dims(owner, self.spatial_dims)
        check(
            len(self.attention_levels) == len(self.channels),
            owner,
            "attention_levels",
            f"needs one flag per level of channels ({len(self.channels)}), got {len(self.attention_levels)}",
        )
        check_groups(owner, "channels", self.channels, self.norm_num_groups)
        bad = [
            c
            for c, a in zip(self.channels, self.attention_levels, strict=True)
            if a and c % self.num_head_channels
        ]
        check(
            not bad,
            owner,
            "num_head_channels",
            f"={self.num_head_channels} must divide attention channels {bad}",
        )
        check(
            self.cross_attention_dim is None or self.cross_attention_dim > 0,
            owner,
            "cross_attention_dim",
            "must be a positive int (the text encoder's dim) or None",
        )


def build_unet(config: UNetConfig) -> DiffusionModelUNet:
    """The MONAI ``DiffusionModelUNet`` for ``config`` (randomly initialised)."""
    from monai.networks.nets import DiffusionModelUNet

    return DiffusionModelUNet(
        spatial_dims=config.spatial_dims,
        in_channels=config.in_channels,
        out_channels=config.out_channels,
        channels=config.channels,
        num_res_blocks=config.num_res_blocks,
        attention_levels=config.attention_levels,
        num_head_channels=config.num_head_channels,
        with_conditioning=config.cross_attention_dim is not None,
        cross_attention_dim=config.cross_attention_dim,
        transformer_num_layers=config.transformer_num_layers,
        norm_num_groups=config.norm_num_groups,
        use_flash_attention=config.use_flash_attention,
    )
