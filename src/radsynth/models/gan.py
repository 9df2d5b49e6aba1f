"""A text-conditional GAN: an upsampling convolutional generator and a conditional
``PatchDiscriminator``.

Generator (DCGAN layout, Radford et al. 2016, with GroupNorm instead of BatchNorm so an
image does not depend on the others in its batch, which per-sample seeds need):
text tokens -> masked mean -> linear -> c; [z, c] -> linear -> (C0, *start) ->
stages of (2x nearest upsample, 3x3 conv, conditional GroupNorm, SiLU) -> 3x3 conv ->
tanh, images in [-1, 1]. The conditional GroupNorm scales and shifts each stage from
[z, c], as BigGAN's conditional BatchNorm does (Brock et al. 2019, §3), so the text reaches
every resolution rather than only the first layer.

Discriminator: the pooled text embedding is projected to a few channels, broadcast over
the image and concatenated to it (conditioning by concatenated embedding maps, Reed et al.
2016), then MONAI's ``PatchDiscriminator`` scores patches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from radsynth.models.config import Config, check, check_groups, check_spatial_dims
from radsynth.models.layers import conv_nd, pool_text


@dataclass(frozen=True)
class GANConfig(Config):
    """Generator and discriminator sizes.

    ``channels`` are the generator's widths, one per stage; the first stage runs at
    ``start_size`` and each later one doubles the resolution, so every entry of
    ``image_size`` must be a multiple of ``2 ** (len(channels) - 1)``. ``text_dim`` is the
    text encoder's ``dim``; ``image_size`` is in pixels, numpy order.
    """

    spatial_dims: int = 2
    image_size: tuple[int, ...] = (64, 64)
    out_channels: int = 1
    noise_dim: int = 128
    text_dim: int = 384
    cond_dim: int = 128
    channels: tuple[int, ...] = (256, 128, 64, 32, 32)
    norm_num_groups: int = 16
    disc_channels: int = 64
    disc_layers: int = 3
    disc_text_channels: int = 16

    def __post_init__(self) -> None:
        owner = type(self).__name__
        check_spatial_dims(owner, self.spatial_dims)
        check(
            len(self.image_size) == self.spatial_dims,
            owner,
            "image_size",
            f"{self.image_size} needs {self.spatial_dims} sizes (spatial_dims)",
        )
        check(len(self.channels) >= 2, owner, "channels", "needs at least two stages")
        f = 2 ** (len(self.channels) - 1)
        bad = [s for s in self.image_size if s % f or s < f]
        check(
            not bad,
            owner,
            "image_size",
            f"{self.image_size} must be multiples of {f} (2 ** (len(channels) - 1))",
        )
        check_groups(owner, "channels", self.channels, self.norm_num_groups)
        for name in ("noise_dim", "text_dim", "cond_dim", "disc_channels", "disc_text_channels"):
            check(getattr(self, name) > 0, owner, name, "must be > 0")

    @property
    def start_size(self) -> tuple[int, ...]:
        """Spatial size of the generator's first feature map."""
        f = 2 ** (len(self.channels) - 1)
        return tuple(s // f for s in self.image_size)


class ConditionalGroupNorm(nn.Module):
    """GroupNorm without affine, then ``(1 + gamma(y)) * h + beta(y)`` from a vector ``y``."""

    def __init__(self, groups: int, channels: int, y_dim: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels, affine=False)
        self.affine = nn.Linear(y_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight)  # start as plain GroupNorm
        nn.init.zeros_(self.affine.bias)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.affine(y).chunk(2, dim=1)  # (B, C) each
        shape = (*gamma.shape, *([1] * (h.ndim - 2)))  # (B, C, 1, 1[, 1])
        return self.norm(h) * (1 + gamma.view(shape)) + beta.view(shape)


class _Stage(nn.Module):
    def __init__(self, config: GANConfig, c_in: int, c_out: int, upsample: bool) -> None:
        super().__init__()
        y_dim = config.noise_dim + config.cond_dim
        self.upsample = upsample
        self.conv = conv_nd(config.spatial_dims, c_in, c_out, kernel_size=3, padding=1)
        self.norm = ConditionalGroupNorm(config.norm_num_groups, c_out, y_dim)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            h = nn.functional.interpolate(h, scale_factor=2.0, mode="nearest")
        return nn.functional.silu(self.norm(self.conv(h), y))


class ConditionalGenerator(nn.Module):
    """``forward(z (B, noise_dim), context (B, T, D), mask (B, T)) -> (B, C, *image_size)``."""

    def __init__(self, config: GANConfig) -> None:
        super().__init__()
        self.config = config
        self.text_proj = nn.Sequential(nn.Linear(config.text_dim, config.cond_dim), nn.SiLU())
        y_dim = config.noise_dim + config.cond_dim
        self.fc = nn.Linear(y_dim, config.channels[0] * math.prod(config.start_size))
        widths = (config.channels[0], *config.channels)
        self.stages = nn.ModuleList(
            _Stage(config, c_in, c_out, upsample=i > 0)
            for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:], strict=True))
        )
        self.out = conv_nd(
            config.spatial_dims, config.channels[-1], config.out_channels, kernel_size=3, padding=1
        )

    def forward(
        self, z: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        y = torch.cat([z, self.text_proj(pool_text(context, mask))], dim=1)  # (B, noise_dim + cond_dim)
        h = self.fc(y).view(z.shape[0], self.config.channels[0], *self.config.start_size)  # (B, C0, *start)
        for stage in self.stages:
            h = stage(h, y)
        return torch.tanh(self.out(h))


class ConditionalPatchDiscriminator(nn.Module):
    """``forward(x, context, mask) -> list of features``, the last being patch logits.

    Returns MONAI ``PatchDiscriminator``'s list so a training task can use feature matching;
    ``logits = disc(x, context, mask)[-1]``.
    """

    def __init__(self, config: GANConfig) -> None:
        from monai.networks.nets import PatchDiscriminator  # here: generating never imports MONAI

        super().__init__()
        self.text_proj = nn.Linear(config.text_dim, config.disc_text_channels)
        self.net = PatchDiscriminator(
            spatial_dims=config.spatial_dims,
            channels=config.disc_channels,
            in_channels=config.out_channels + config.disc_text_channels,
            num_layers_d=config.disc_layers,
        )

    def forward(
        self, x: torch.Tensor, context: torch.Tensor, mask: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        maps = self.text_proj(pool_text(context, mask))  # (B, K)
        maps = maps.view(*maps.shape, *([1] * (x.ndim - 2))).expand(-1, -1, *x.shape[2:])  # (B, K, *spatial)
        return self.net(torch.cat([x, maps], dim=1))


def build_gan(config: GANConfig) -> tuple[ConditionalGenerator, ConditionalPatchDiscriminator]:
    """(generator, discriminator) for ``config`` (randomly initialised)."""
    return ConditionalGenerator(config), ConditionalPatchDiscriminator(config)
