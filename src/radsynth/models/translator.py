"""Image-to-image networks for translation: a MONAI ``UNet`` generator and MONAI's
``PatchDiscriminator`` (pix2pix, Isola et al. 2017, §3.2; CycleGAN, Zhu et al. 2017).

Restoration (denoising, super-resolution) predicts a residual added to its input (the
input is already the right size: super-resolution inputs are upsampled first), so an
untrained network starts as the identity and learns only what the degradation took away.
Fully convolutional: any size divisible by ``2 ** len(strides)`` runs; ``pad_to_multiple``
takes care of the rest.

``upsample: resize`` replaces the UNet's stride-2 transposed convolutions by bilinear
resizing and a 3x3 convolution (Odena et al. 2016, "Deconvolution and checkerboard
artifacts"): a GAN-trained generator (CycleGAN) otherwise paints a checkerboard it takes
thousands of steps to unlearn.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from radsynth.errors import InvalidInput


@dataclass(frozen=True)
class TranslatorConfig:
    """``channels`` per level of the UNet (``len - 1`` stride-2 downsamplings);
    ``residual``: output = input + network(input); ``upsample``: ``deconv`` (MONAI's
    transposed convolutions) or ``resize`` (bilinear resize + convolution)."""

    spatial_dims: int = 2
    channels: tuple[int, ...] = (32, 64, 128, 128)
    num_res_units: int = 1
    residual: bool = True
    disc_channels: int = 32
    disc_layers: int = 3
    upsample: str = "deconv"

    def __post_init__(self) -> None:
        if self.upsample not in ("deconv", "resize"):
            raise InvalidInput(f"model.upsample must be deconv or resize, got {self.upsample!r}")
        if self.spatial_dims not in (2, 3):
            raise InvalidInput(f"model.spatial_dims must be 2 or 3, got {self.spatial_dims}")
        if len(self.channels) < 2 or min(self.channels) < 1:
            raise InvalidInput(f"model.channels needs >= 2 positive widths, got {self.channels}")

    @property
    def multiple(self) -> int:
        return 2 ** (len(self.channels) - 1)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "channels": list(self.channels)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TranslatorConfig:
        data = dict(data)
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise InvalidInput(f"model: unknown key(s) {', '.join(sorted(unknown))}")
        if "channels" in data:
            data["channels"] = tuple(data["channels"])
        return cls(**data)


class Translator(nn.Module):
    """Images in [-1, 1] -> images in [-1, 1] (same shape)."""

    def __init__(self, config: TranslatorConfig) -> None:
        super().__init__()
        self.config = config
        self.net = _unet_class(config.upsample)(
            spatial_dims=config.spatial_dims,
            in_channels=1,
            out_channels=1,
            channels=config.channels,
            strides=(2,) * (len(config.channels) - 1),
            num_res_units=config.num_res_units,
            norm="instance",
        )
        # ReZero (Bachlechner et al. 2020): the residual branch is scaled by a learnt gate
        # that starts at 0, so an untrained restorer or CycleGAN generator is exactly the
        # identity (cycle consistency holds from step 0)
        self.gate = nn.Parameter(torch.zeros(1)) if config.residual else None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        padded, crop = pad_to_multiple(images, self.config.multiple)
        return self.padded(padded)[crop]

    def padded(self, padded: torch.Tensor) -> torch.Tensor:
        """The network on a batch already padded to a multiple (what an export traces)."""
        out = self.net(padded)
        return (padded + self.gate * out) if self.gate is not None else torch.tanh(out)


def _unet_class(upsample: str) -> type[nn.Module]:
    """MONAI's UNet, or (``resize``) a subclass whose up layers resize then convolve.
    Imported here so that importing this module does not import MONAI."""
    from monai.networks.blocks import Convolution
    from monai.networks.nets import UNet

    if upsample == "deconv":
        return UNet

    class ResizeUNet(UNet):
        def _get_up_layer(self, in_channels: int, out_channels: int, strides: int, is_top: bool) -> nn.Module:
            layer = super()._get_up_layer(in_channels, out_channels, strides, is_top)
            mode = "bilinear" if self.dimensions == 2 else "trilinear"
            resized = nn.Sequential(
                nn.Upsample(scale_factor=strides, mode=mode, align_corners=False),
                Convolution(
                    self.dimensions,
                    in_channels,
                    out_channels,
                    strides=1,
                    kernel_size=3,
                    act=self.act,
                    norm=self.norm,
                    dropout=self.dropout,
                    bias=self.bias,
                    conv_only=is_top and self.num_res_units == 0,
                    adn_ordering=self.adn_ordering,
                ),
            )
            if isinstance(layer, nn.Sequential):  # (transposed conv, residual unit)
                layer[0] = resized
                return layer
            return resized

    return ResizeUNet


def build_discriminator(config: TranslatorConfig) -> nn.Module:
    """A PatchGAN critic (70x70 receptive field at 3 layers, pix2pix §3.2.2)."""
    from monai.networks.nets import PatchDiscriminator

    return PatchDiscriminator(
        spatial_dims=config.spatial_dims,
        num_layers_d=config.disc_layers,
        channels=config.disc_channels,
        in_channels=1,
        out_channels=1,
        norm="INSTANCE",
    )


def pad_to_multiple(images: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[slice, ...]]:
    """Reflect-pad the spatial axes up to a multiple; returns the padded batch and the
    index that crops the result back."""
    sizes = images.shape[2:]
    extra = [(-s) % multiple for s in sizes]
    if not any(extra):
        return images, (slice(None),) * images.dim()
    pad = []
    for e in reversed(extra):  # F.pad wants the last axis first
        pad += [e // 2, e - e // 2]
    mode = "reflect" if all(s > e for s, e in zip(sizes, extra, strict=True)) else "replicate"
    padded = nn.functional.pad(images, pad, mode=mode)
    crop = (slice(None), slice(None)) + tuple(
        slice(e // 2, e // 2 + s) for e, s in zip(extra, sizes, strict=True)
    )
    return padded, crop
