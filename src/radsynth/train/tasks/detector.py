"""The synthetic-image detector task: real vs synthetic, from pixels alone.

Labels come from the manifest (``labels.source`` = ``real`` or ``synthetic``, written by
``radsynth.generate.detector_set``). The synthetic training images carry no watermark,
so the network cannot learn the mark instead of the generator's traces; every image is
contrast-normalised (:func:`contrast_normalise`) so brightness and window say nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from radsynth.errors import InvalidInput
from radsynth.models.classifier import AttributeClassifier, ClassifierConfig
from radsynth.train.config import TrainConfig
from radsynth.train.data import TrainingData
from radsynth.train.task import Batch, LossTask
from radsynth.train.tasks.common import adam, image_fields

SOURCES = ("real", "synthetic")


def contrast_normalise(images: torch.Tensor) -> torch.Tensor:
    """Each image's 1st..99th percentile -> [-1, 1] (clipped): (B, 1, H, W) in any units.

    The detector must not tell real from synthetic by brightness or by the window a file
    happens to be stored in (HU, [0, 1], 8 or 16 bits); this makes them all look alike.
    """
    flat = images.flatten(1).float()
    lo = torch.quantile(flat, 0.01, dim=1).view(-1, *([1] * (images.dim() - 1)))
    hi = torch.quantile(flat, 0.99, dim=1).view(-1, *([1] * (images.dim() - 1)))
    unit = (images.float() - lo) / (hi - lo).clamp_min(1e-6)
    return unit.clamp(0, 1) * 2 - 1


def flip_augment(images: torch.Tensor) -> torch.Tensor:
    """Random horizontal and vertical flips (global RNG, seeded per step by the loop):
    they keep every pixel-level trace a generator leaves, unlike resampling."""
    flip_x = torch.rand(images.shape[0], device=images.device) < 0.5
    flip_y = torch.rand(images.shape[0], device=images.device) < 0.5
    images = torch.where(flip_x.view(-1, 1, 1, 1), images.flip(-1), images)
    return torch.where(flip_y.view(-1, 1, 1, 1), images.flip(-2), images)


class DetectorTask(LossTask):
    shipped = ("detector",)
    ema = ("detector",)

    def __init__(self, config: TrainConfig, data: TrainingData, device: torch.device) -> None:
        self.config = config
        self.data = data
        self.net_config = ClassifierConfig.from_dict(
            {**dict(config.model), "attributes": {"source": SOURCES}}
        )
        self.net = AttributeClassifier(self.net_config)
        sources = [(r.labels or {}).get("source") for r in data.records]
        unknown = sorted({str(s) for s in sources if s not in SOURCES})
        if unknown:
            raise InvalidInput(f"detector training needs labels.source real|synthetic, found {unknown}")
        if len(set(sources)) < 2:
            raise InvalidInput("detector training needs both real and synthetic images", data.path)
        self.targets = torch.tensor([SOURCES.index(s) for s in sources])

    def modules(self) -> dict[str, nn.Module]:
        return {"detector": self.net}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": adam(self.net.parameters(), self.config.lr)}

    def loss(self, batch: Batch, nets: Mapping[str, nn.Module]) -> tuple[torch.Tensor, dict[str, Any]]:
        images = contrast_normalise(flip_augment(batch["image"]))
        logits = nets["detector"](images)["source"].float()
        targets = self.targets[batch["index"].cpu()].to(logits.device)
        loss = nn.functional.cross_entropy(logits, targets)
        accuracy = (logits.argmax(1) == targets).float().mean()
        return loss, {"acc": accuracy.detach()}

    def card(self, shipped: Mapping[str, nn.Module]) -> dict[str, Any]:
        info = image_fields(self.config, self.data)
        counts = {s: int((self.targets == i).sum()) for i, s in enumerate(SOURCES)}
        generators = sorted(
            {str(r.labels.get("generator")) for r in self.data.records if r.labels.get("generator")}
        )
        info.update({"classes": list(SOURCES), "counts": counts, "generators": generators})
        return {"config": {"detector": self.net_config.to_dict()}, "task_info": info}
