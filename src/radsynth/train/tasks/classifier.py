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
        logits = nets["classifier"](batch["image"])
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


def _index(classes: tuple[str, ...], value: str | None) -> int:
    return classes.index(value) if value in classes else -1
