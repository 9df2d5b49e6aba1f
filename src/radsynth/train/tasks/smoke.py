"""A tiny convolutional autoencoder trained with L1: a seconds-long check of the loop,
checkpoints, resume and DDP without the model stack (tests and ``radsynth train`` smoke
runs). Deterministic given its batch, so one process and N processes agree."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from radsynth.errors import InvalidInput
from radsynth.train.config import TrainConfig, from_dict
from radsynth.train.data import TrainingData
from radsynth.train.task import Batch, LossTask
from radsynth.train.tasks.common import adam, image_fields


@dataclass(frozen=True)
class SmokeConfig:
    """Widths of the two stride-2 convolutions (image -> 1/4 size -> image)."""

    channels: int = 8

    def __post_init__(self) -> None:
        if self.channels < 1:
            raise InvalidInput(f"model.channels must be >= 1, got {self.channels}")


class SmokeNet(nn.Module):
    def __init__(self, config: SmokeConfig) -> None:
        super().__init__()
        c = config.channels
        self.net = nn.Sequential(
            nn.Conv2d(1, c, 4, stride=2, padding=1),
            nn.SiLU(),
            nn.Conv2d(c, 2 * c, 4, stride=2, padding=1),
            nn.SiLU(),
            nn.ConvTranspose2d(2 * c, c, 4, stride=2, padding=1),
            nn.SiLU(),
            nn.ConvTranspose2d(c, 1, 4, stride=2, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SmokeTask(LossTask):
    shipped = ("net",)
    ema = ("net",)

    def __init__(self, config: TrainConfig, data: TrainingData, device: torch.device) -> None:
        if config.options:
            raise InvalidInput(f"options: the smoke task takes none, got {sorted(config.options)}")
        self.config = config
        self.data = data
        self.net_config = from_dict(SmokeConfig, config.model, "model.")
        self.net = SmokeNet(self.net_config)

    def modules(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": adam(self.net.parameters(), self.config.lr)}

    def loss(self, batch: Batch, nets: Mapping[str, nn.Module]) -> tuple[torch.Tensor, dict[str, Any]]:
        images = batch["image"]
        return (nets["net"](images).float() - images).abs().mean(), {}

    def card(self, shipped: Mapping[str, nn.Module]) -> dict[str, Any]:
        return {
            "config": {"smoke": asdict(self.net_config)},
            "task_info": image_fields(self.config, self.data),
        }
