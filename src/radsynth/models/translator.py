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

``flow_steps > 0`` makes the same UNet a conditional flow translator, in the family of
the source-started bridges (InDI, Delbracio & Milanfar 2023; I2SB; SelfRDB): the path
``x_t = (1 - t) source + t target`` runs from the input image to its translation. The
network, shown a point ``x_t`` of it, the whole input and ``t`` (a constant channel),
estimates the target; the velocity there is ``(estimate - x_t) / (1 - t)``, and
translating takes ``flow_steps`` Euler steps of it from the input (InDI's update), each
refining from the last one's estimate; the last step lands on the last estimate. In
training the points carry Brownian-bridge noise (``FLOW_NOISE sqrt(t (1 - t))``): on the
noise-free path the target follows from ``x_t`` and the input by arithmetic alone, which
the network would learn in place of the translation; and half the samples sit at
``t = 0``, where the estimate is pix2pix's (the input alone), since every later step
starts from it. Inference is deterministic (no noise), so a trace of it is one fixed
graph and a volume translates the same every time. (Two other paths were tried on the
atlas pairs at 400 steps: the noise-free path with a predicted velocity came out as
noisy edges, and a path started at Gaussian noise drew structures outside the head.)
With several inputs (``in_channels > 1``, e.g. T1 + T2 -> FLAIR) the path starts at the
first.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from radsynth.errors import InvalidInput

NORMS = {"instance": "instance", "none": None}  # model.norm -> MONAI's norm argument
FLOW_NOISE = 0.2  # the bridge's training noise at mid-path, in the model's [-1, 1] units


@dataclass(frozen=True)
class TranslatorConfig:
    """``channels`` per level of the UNet (``len - 1`` stride-2 downsamplings);
    ``residual``: output = input + network(input); ``upsample``: ``deconv`` (MONAI's
    transposed convolutions) or ``resize`` (bilinear resize + convolution);
    ``in_channels``: input images stacked as channels (several contrasts of one slice);
    ``flow_steps``: 0 for a one-pass translator, else a conditional flow sampled in that
    many Euler steps (see the module docstring); ``norm``: ``instance`` normalisation in
    the UNet's blocks, or ``none``: a restorer needs the absolute level of its patch
    (Rician noise lifts dark tissue more than bright), which instance normalisation takes
    away (EDSR, Lim et al. 2017, dropped normalisation from SR networks for the same reason)."""

    spatial_dims: int = 2
    channels: tuple[int, ...] = (32, 64, 128, 128)
    num_res_units: int = 1
    residual: bool = True
    disc_channels: int = 32
    disc_layers: int = 3
    upsample: str = "deconv"
    in_channels: int = 1
    flow_steps: int = 0
    norm: str = "instance"

    def __post_init__(self) -> None:
        if self.norm not in NORMS:
            raise InvalidInput(f"model.norm must be one of {', '.join(NORMS)}, got {self.norm!r}")
        if self.upsample not in ("deconv", "resize"):
            raise InvalidInput(f"model.upsample must be deconv or resize, got {self.upsample!r}")
        if self.spatial_dims not in (2, 3):
            raise InvalidInput(f"model.spatial_dims must be 2 or 3, got {self.spatial_dims}")
        if len(self.channels) < 2 or min(self.channels) < 1:
            raise InvalidInput(f"model.channels needs >= 2 positive widths, got {self.channels}")
        if self.in_channels < 1 or self.flow_steps < 0:
            raise InvalidInput(
                f"model.in_channels must be >= 1 and model.flow_steps >= 0, got {self.in_channels}, "
                f"{self.flow_steps}"
            )
        if self.flow_steps and self.residual:
            raise InvalidInput(
                "a flow translator (model.flow_steps > 0) is not residual: set residual: false"
            )

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
    """Images in [-1, 1] (B, in_channels, ...) -> images in [-1, 1] (B, 1, ...)."""

    def __init__(self, config: TranslatorConfig) -> None:
        super().__init__()
        self.config = config
        self.net = _unet_class(config.upsample)(
            spatial_dims=config.spatial_dims,
            # a flow's network also sees the point on the path and the time
            in_channels=config.in_channels + (2 if config.flow_steps else 0),
            out_channels=1,
            channels=config.channels,
            strides=(2,) * (len(config.channels) - 1),
            num_res_units=config.num_res_units,
            norm=NORMS[config.norm],
        )
        # ReZero (Bachlechner et al. 2020): the residual branch is scaled by a learnt gate
        # that starts at 0, so an untrained restorer or CycleGAN generator is exactly the
        # identity (cycle consistency holds from step 0)
        self.gate = nn.Parameter(torch.zeros(1)) if config.residual else None

    def forward(
        self, images: torch.Tensor, point: torch.Tensor | None = None, t: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The translation of ``images``; for a flow given ``point`` (x_t) and ``t`` (B,),
        the network's estimate of the target there (what training calls, through the DDP
        wrapper)."""
        if point is not None:
            if t is None or not self.config.flow_steps:
                raise InvalidInput("a target estimate at a point needs a flow translator and a time t")
            stacked, crop = pad_to_multiple(torch.cat([point, images], dim=1), self.config.multiple)
            time = t.view(-1, *([1] * (point.dim() - 1))).expand_as(stacked[:, :1])
            return self.estimate(stacked[:, :1], stacked[:, 1:], time)[crop]
        padded, crop = pad_to_multiple(images, self.config.multiple)
        return self.padded(padded)[crop]

    def padded(self, padded: torch.Tensor) -> torch.Tensor:
        """The network on a batch already padded to a multiple (what an export traces)."""
        if self.config.flow_steps:
            return self.integrate(padded)
        out = self.net(padded)
        return (padded + self.gate * out) if self.gate is not None else torch.tanh(out)

    def estimate(self, point: torch.Tensor, source: torch.Tensor, time: torch.Tensor) -> torch.Tensor:
        """The flow's estimate of the target from ``point`` = x_t (B, 1, ...), ``time`` the
        map of t (same shape as ``point``)."""
        return self.net(torch.cat([point, source, time.to(point.dtype)], dim=1))

    def integrate(self, source: torch.Tensor) -> torch.Tensor:
        """Euler steps of the velocity (estimate - x_t) / (1 - t) from the first input; the
        last step lands on the last estimate."""
        steps = self.config.flow_steps
        point = source[:, :1]
        for k in range(steps):
            # built from the batch, not from its size, so a trace takes any batch
            time = torch.ones_like(point) * (k / steps)
            point = point + (self.estimate(point, source, time) - point) / (steps - k)
        return point.clamp(-1, 1)


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
