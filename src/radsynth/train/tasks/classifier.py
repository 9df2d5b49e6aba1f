"""The attribute classifier task: cross-entropy per head on real slices, labels taken
from the manifest's structured facts (never parsed back from the caption text)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from radsynth.data.manifest import Record
from radsynth.models.classifier import AttributeClassifier, ClassifierConfig
from radsynth.train.config import TrainConfig
from radsynth.train.data import TrainingData
from radsynth.train.task import Batch, LossTask
from radsynth.train.tasks.common import adam, image_fields

FINDINGS_PRESENT = ("tumour", "lesion", "mass", "nodule")


def record_attribute(record: Record, name: str) -> str | None:
    """The value of attribute ``name`` for a real record, None where it is not known."""
    if name == "modality":
        return record.modality
    if name == "anatomy":
        return record.anatomy
    if name == "finding":
        finding = (record.labels or {}).get("finding")
        if finding == "none":
            return "absent"
        return "present" if finding in FINDINGS_PRESENT else None
    return getattr(record, name, None)


class ClassifierTask(LossTask):
    shipped = ("classifier",)
    ema = ("classifier",)

    def __init__(self, config: TrainConfig, data: TrainingData, device: torch.device) -> None:
        self.config = config
        self.data = data
        self.net_config = ClassifierConfig.from_dict(dict(config.model))
        self.net = AttributeClassifier(self.net_config)
        # (N, heads) class indices per record, -1 where unknown (ignored by the loss)
        self.targets = torch.tensor(
            [
                [
                    _index(classes, record_attribute(r, name))
                    for name, classes in self.net_config.attributes.items()
                ]
                for r in data.records
            ],
            dtype=torch.long,
        )

    def modules(self) -> dict[str, nn.Module]:
        return {"classifier": self.net}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": adam(self.net.parameters(), self.config.lr)}

    def loss(self, batch: Batch, nets: Mapping[str, nn.Module]) -> tuple[torch.Tensor, dict[str, Any]]:
        logits = nets["classifier"](appearance_augment(batch["image"]))
        targets = self.targets[batch["index"].cpu()].to(batch["image"].device)
        total, logs = 0.0, {}
        for i, name in enumerate(self.net_config.attributes):
            known = targets[:, i] >= 0
            if known.any():
                loss = nn.functional.cross_entropy(logits[name].float(), targets[:, i], ignore_index=-1)
                accuracy = (logits[name].argmax(1)[known] == targets[known, i]).float().mean()
            else:  # keep the graph (DDP) and the log keys the same on every step (logged as 0)
                loss = logits[name].float().sum() * 0.0
                accuracy = torch.zeros(())
            total = total + loss
            logs[f"acc_{name}"] = accuracy.detach()
        return total, logs

    def card(self, shipped: Mapping[str, nn.Module]) -> dict[str, Any]:
        info = image_fields(self.config, self.data)
        info["attributes"] = {k: list(v) for k, v in self.net_config.attributes.items()}
        return {"config": {"classifier": self.net_config.to_dict()}, "task_info": info}


def appearance_augment(images: torch.Tensor) -> torch.Tensor:
    """Random flips, rotation (+-15 deg), zoom (0.8-1.25), gamma (0.6-1.6), contrast and
    noise on images in [-1, 1] (global RNG, seeded per step by the loop).

    With a handful of subjects per class the classifier otherwise learns each subject's
    field of view and intensity profile instead of the modality and anatomy: without it,
    held-out subjects were read right only about half the time.
    """
    if images.dim() != 4:  # the geometric part is written for 2D batches (B, C, H, W)
        raise NotImplementedError("appearance_augment handles 2D images only")
    b = images.shape[0]
    angle = (torch.rand(b) * 2 - 1) * torch.pi / 12
    scale = torch.exp((torch.rand(b) * 2 - 1) * 0.22)
    flip = torch.where(torch.rand(b) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos * flip, -sin, torch.zeros(b)], 1),
            torch.stack([sin * flip, cos, torch.zeros(b)], 1),
        ],
        1,
    )  # (B, 2, 3)
    theta = theta.to(images.device, images.dtype)
    grid = nn.functional.affine_grid(theta, list(images.shape), align_corners=False)
    unit = (nn.functional.grid_sample(images, grid, padding_mode="border", align_corners=False) + 1) / 2
    shape = (b,) + (1,) * (images.dim() - 1)
    gamma = torch.exp((torch.rand(shape, device=images.device) * 2 - 1) * 0.47)
    unit = unit.clamp(0, 1) ** gamma
    contrast = 0.8 + 0.4 * torch.rand(shape, device=images.device)
    unit = (unit - unit.mean(dim=tuple(range(1, images.dim())), keepdim=True)) * contrast + unit.mean(
        dim=tuple(range(1, images.dim())), keepdim=True
    )
    unit = unit + 0.03 * torch.rand(shape, device=images.device) * torch.randn_like(unit)
    return unit.clamp(0, 1) * 2 - 1


def _index(classes: tuple[str, ...], value: str | None) -> int:
    return classes.index(value) if value in classes else -1
