"""A small multi-head CNN that reads a slice's attributes (modality, anatomy, finding).

It is the evaluation's reader, trained only on real images: text adherence asks it what
a generated image shows, and its pooled features are the domain feature space for
Fréchet distances (an ImageNet Inception would need downloaded weights and knows nothing
of CT windows). Built from MONAI's ``Convolution`` blocks; ``spatial_dims=3`` makes it 3D.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from radsynth.errors import InvalidInput

if TYPE_CHECKING:  # MONAI is imported where a network is built (inference loads exports)
    from monai.networks.blocks import Convolution

# What the demo corpus states for every (or most) slices; "finding" is unknown for some.
DEFAULT_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "modality": ("CT", "MR"),
    "anatomy": ("brain", "head", "chest", "breast"),
    "finding": ("absent", "present"),
}


@dataclass(frozen=True)
class ClassifierConfig:
    """``channels`` per stride-2 stage; ``attributes`` maps each head to its classes."""

    spatial_dims: int = 2
    channels: tuple[int, ...] = (16, 32, 64, 128)
    dropout: float = 0.1
    attributes: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_ATTRIBUTES))

    def __post_init__(self) -> None:
        if self.spatial_dims not in (2, 3):
            raise InvalidInput(f"model.spatial_dims must be 2 or 3, got {self.spatial_dims}")
        if not self.channels or min(self.channels) < 1:
            raise InvalidInput(f"model.channels must be positive widths, got {self.channels}")
        if not self.attributes or any(len(v) < 2 for v in self.attributes.values()):
            raise InvalidInput("model.attributes needs at least one head with at least two classes")

    @property
    def feature_dim(self) -> int:
        return self.channels[-1]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channels"] = list(self.channels)
        d["attributes"] = {k: list(v) for k, v in self.attributes.items()}
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassifierConfig:
        data = dict(data)
        if "channels" in data:
            data["channels"] = tuple(data["channels"])
        if "attributes" in data:
            data["attributes"] = {k: tuple(v) for k, v in data["attributes"].items()}
        unknown = set(data) - {"spatial_dims", "channels", "dropout", "attributes"}
        if unknown:
            raise InvalidInput(f"model: unknown key(s) {', '.join(sorted(unknown))}")
        return cls(**data)


class AttributeClassifier(nn.Module):
    """Images in [-1, 1] -> ``{attribute: logits}``; :meth:`features` gives the pooled vector."""

    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        self.config = config
        layers, width = [], 1
        for out in config.channels:  # per stage: a stride-2 conv, then a stride-1 conv
            layers += [_conv(config.spatial_dims, width, out, 2), _conv(config.spatial_dims, out, out, 1)]
            width = out
        self.backbone = nn.Sequential(*layers)
        self.dropout = nn.Dropout(config.dropout)
        self.heads = nn.ModuleDict(
            {name: nn.Linear(width, len(classes)) for name, classes in config.attributes.items()}
        )

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(B, feature_dim): the global average of the last stage."""
        return self.backbone(images).flatten(2).mean(-1)

    def forward(self, images: torch.Tensor, with_features: bool = False) -> dict[str, torch.Tensor]:
        """``{attribute: logits}``, plus ``"features"`` (B, feature_dim) when asked (one
        forward pass for a loss that needs both, as DDP wants)."""
        features = self.features(images)
        pooled = self.dropout(features)
        out = {name: head(pooled) for name, head in self.heads.items()}
        if with_features:
            out["features"] = features
        return out


def _conv(spatial_dims: int, cin: int, cout: int, stride: int) -> Convolution:
    """3x3 convolution + group norm + SiLU (MONAI's "SWISH")."""
    from monai.networks.blocks import Convolution

    return Convolution(
        spatial_dims,
        cin,
        cout,
        strides=stride,
        kernel_size=3,
        act="SWISH",
        norm=("group", {"num_groups": min(8, cout)}),
    )
