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
# Modalities that are one kind of picture to the detector: a projection radiograph is DX or
# CR depending on the detector plate, not on what it shows.
SAME_KIND = {"DX": ("DX", "CR"), "CR": ("DX", "CR")}


def domain_modalities(records) -> list[str]:
    """The modalities the detector may judge: those of its real training images (with CR
    beside DX); "OT" (PNG, JPEG) says nothing and is judged on pixels anyway."""
    found = {str(r.modality).upper() for r in records if (r.labels or {}).get("source") == "real"}
    return sorted({m for f in found - {"OT", ""} for m in SAME_KIND.get(f, (f,))})


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


VIEWS = ("image", "residual")


def residual(images: torch.Tensor, sigma: float = 1.0) -> torch.Tensor:
    """What is left after a Gaussian blur (sigma in pixels), scaled to unit robust spread per
    image: the fine texture a generator's decoder or a detector's film leaves, with the
    anatomy (which tells sources apart, not real from synthetic) mostly gone."""
    radius = int(3 * sigma)
    x = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    padded = nn.functional.pad(images, (radius, radius, radius, radius), mode="reflect")
    blurred = nn.functional.conv2d(padded, kernel.view(1, 1, 1, -1))
    blurred = nn.functional.conv2d(blurred, kernel.view(1, 1, -1, 1))
    detail = images - blurred
    spread = detail.flatten(1).abs().median(dim=1).values.clamp_min(1e-4).view(-1, 1, 1, 1)
    return (detail / (4 * spread)).clamp(-1, 1)


def detector_view(images: torch.Tensor, view: str = "image") -> torch.Tensor:
    """The network's input: the contrast-normalised image, or its fine residual."""
    images = contrast_normalise(images)
    return residual(images) if view == "residual" else images


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
        model = dict(config.model)
        self.view = str(model.pop("view", "image"))
        if self.view not in VIEWS:
            raise InvalidInput(f"model.view must be one of {', '.join(VIEWS)}, got {self.view!r}")
        self.net_config = ClassifierConfig.from_dict({**model, "attributes": {"source": SOURCES}})
        self.net = AttributeClassifier(self.net_config)
        sources = [(r.labels or {}).get("source") for r in data.records]
        unknown = sorted({str(s) for s in sources if s not in SOURCES})
        if unknown:
            raise InvalidInput(f"detector training needs labels.source real|synthetic, found {unknown}")
        if len(set(sources)) < 2:
            raise InvalidInput("detector training needs both real and synthetic images", data.path)
        self.targets = torch.tensor([SOURCES.index(s) for s in sources])
        # Real images outnumber synthetic ones (many sources, few generators): weigh each
        # class by its inverse frequency so neither side's errors are cheap.
        counts = torch.bincount(self.targets, minlength=len(SOURCES)).float()
        self.class_weights = counts.sum() / (len(SOURCES) * counts.clamp_min(1))

    def modules(self) -> dict[str, nn.Module]:
        return {"detector": self.net}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"model": adam(self.net.parameters(), self.config.lr)}

    def loss(self, batch: Batch, nets: Mapping[str, nn.Module]) -> tuple[torch.Tensor, dict[str, Any]]:
        images = detector_view(flip_augment(batch["image"]), self.view)
        logits = nets["detector"](images)["source"].float()
        targets = self.targets[batch["index"].cpu()].to(logits.device)
        loss = nn.functional.cross_entropy(logits, targets, weight=self.class_weights.to(logits.device))
        accuracy = (logits.argmax(1) == targets).float().mean()
        return loss, {"acc": accuracy.detach()}

    def card(self, shipped: Mapping[str, nn.Module]) -> dict[str, Any]:
        info = image_fields(self.config, self.data)
        counts = {s: int((self.targets == i).sum()) for i, s in enumerate(SOURCES)}
        generators = sorted(
            {str(r.labels.get("generator")) for r in self.data.records if r.labels.get("generator")}
        )
        origins = sorted(
            {str(r.labels.get("origin")) for r in self.data.records if r.labels.get("source") == "real"}
        )
        info.update(
            {
                "classes": list(SOURCES),
                "counts": counts,
                "generators": generators,
                "real_sources": origins,
                "view": self.view,
                "domain": {"modalities": domain_modalities(self.data.records)},
            }
        )
        return {"config": {"detector": self.net_config.to_dict()}, "task_info": info}
