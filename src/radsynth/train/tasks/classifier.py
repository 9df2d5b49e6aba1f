"""The attribute classifier task: cross-entropy per head on real slices, labels taken
from the manifest's structured facts (never parsed back from the caption text)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from radsynth.data.manifest import Record
from radsynth.models.classifier import AttributeClassifier, ClassifierConfig
from radsynth.train.config import TrainConfig
from radsynth.train.data import TrainingData
from radsynth.train.task import Batch, LossTask
from radsynth.train.tasks.common import adam, image_fields, parse_options

FINDINGS_PRESENT = ("tumour", "lesion", "mass", "nodule")
STRUCTURE = "structure"


@dataclass(frozen=True)
class ClassifierOptions:
    """``contrastive``: weight of an NT-Xent term (SimCLR, Chen et al. 2020, eq. 1) that
    pulls the pooled features of two augmented views of a slice together and pushes other
    slices away; 0 trains the heads alone. ``temperature``: its softmax temperature.

    The pooled features are the evaluation's domain space (FID, KID, precision/recall):
    with a dozen subjects the heads alone let those features follow brightness and
    contrast; the contrastive term makes them invariant to exactly those augmentations.

    ``structure``: weight of a pretext head ("intact" vs "scrambled") that tells real
    slices from the same slices with their anatomy destroyed but their texture kept
    (Fourier phase randomised, or 16-pixel patches shuffled; see :func:`scramble`). Real
    images only; it makes the features see whether there is anatomy at all, which
    intensity statistics alone do not.
    """

    contrastive: float = 0.0
    temperature: float = 0.2
    structure: float = 0.0


def record_attribute(record: Record, name: str) -> str | None:
    """The value of attribute ``name`` for a real record, None where it is not known: a
    record field (``modality``, ``anatomy``, ``plane``, ...), else the label of that name
    (the chest X-ray corpus' ``age_group``, ``sex``). A demo finding reads "absent" /
    "present"; another finding label (``normal``, ``pneumonia``) is kept as it is."""
    labels = record.labels or {}
    if name == "finding":
        finding = labels.get("finding")
        if finding == "none":
            return "absent"
        if finding in FINDINGS_PRESENT:
            return "present"
        return None if finding in (None, "unknown") else str(finding)
    value = getattr(record, name) if hasattr(record, name) else labels.get(name)
    return None if value is None else str(value)


class ClassifierTask(LossTask):
    shipped = ("classifier",)
    ema = ("classifier",)

    def __init__(self, config: TrainConfig, data: TrainingData, device: torch.device) -> None:
        self.config = config
        self.data = data
        self.net_config = ClassifierConfig.from_dict(dict(config.model))
        self.options: ClassifierOptions = parse_options(ClassifierOptions, config)
        if self.options.structure > 0:
            attributes = {**self.net_config.attributes, STRUCTURE: ("intact", "scrambled")}
            self.net_config = dataclasses.replace(self.net_config, attributes=attributes)
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
        views = 2 if self.options.contrastive > 0 else 1
        b = batch["image"].shape[0]
        images = torch.cat([appearance_augment(batch["image"]) for _ in range(views)])  # (views*B, 1, H, W)
        targets = self.targets[batch["index"].cpu()].repeat(views, 1).to(images.device)
        if self.options.structure > 0:
            images, targets = self._with_scrambled(images, targets, b)
        logits = nets["classifier"](images, with_features=views > 1)
        total, logs = 0.0, {}
        if views > 1:
            first, second = logits.pop("features")[: 2 * b].chunk(2)
            nt_xent = nt_xent_loss(first, second, self.options.temperature)
            total = self.options.contrastive * nt_xent
            logs["nt_xent"] = nt_xent.detach()
        for i, name in enumerate(self.net_config.attributes):
            known = targets[:, i] >= 0
            if known.any():
                loss = nn.functional.cross_entropy(logits[name].float(), targets[:, i], ignore_index=-1)
                accuracy = (logits[name].argmax(1)[known] == targets[known, i]).float().mean()
            else:  # keep the graph (DDP) and the log keys the same on every step (logged as 0)
                loss = logits[name].float().sum() * 0.0
                accuracy = torch.zeros(())
            weight = self.options.structure if name == STRUCTURE else 1.0
            total = total + weight * loss
            logs[f"acc_{name}"] = accuracy.detach()
        return total, logs

    def _with_scrambled(self, images: torch.Tensor, targets: torch.Tensor, b: int) -> tuple:
        """The views (structure "intact", 0) plus the first view scrambled ("scrambled",
        1, every other attribute unknown)."""
        column = list(self.net_config.attributes).index(STRUCTURE)
        targets = targets.clone()
        targets[:, column] = 0
        extra = torch.full((b, targets.shape[1]), -1, dtype=targets.dtype, device=targets.device)
        extra[:, column] = 1
        return torch.cat([images, scramble(images[:b])]), torch.cat([targets, extra])

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


def scramble(images: torch.Tensor, patch: int = 16) -> torch.Tensor:
    """Real (B, 1, H, W) images in [-1, 1] with their anatomy destroyed and their texture
    kept: the first half get random Fourier phases with the amplitude spectrum kept
    (phase randomisation, Theiler et al. 1992), the rest have their ``patch``-pixel tiles
    shuffled; each keeps its mean and standard deviation. Global RNG (seeded per step)."""
    b, c, h, w = images.shape
    half = b // 2
    spectrum = torch.fft.rfft2(images[:half])
    phase = torch.rand(spectrum.shape, device=images.device) * 2 * torch.pi
    randomised = torch.fft.irfft2(spectrum.abs() * torch.exp(1j * phase), s=(h, w))
    tiles = images[half:].unfold(2, patch, patch).unfold(3, patch, patch)  # (B', C, h/p, w/p, p, p)
    gh, gw = tiles.shape[2], tiles.shape[3]
    tiles = tiles.reshape(b - half, c, gh * gw, patch, patch)
    order = torch.stack([torch.randperm(gh * gw) for _ in range(b - half)]).to(images.device)
    tiles = torch.stack([tiles[i, :, order[i]] for i in range(b - half)])  # shuffled tiles
    shuffled = (
        tiles.reshape(b - half, c, gh, gw, patch, patch).permute(0, 1, 2, 4, 3, 5).reshape(b - half, c, h, w)
    )
    out = torch.cat([_match_moments(randomised, images[:half]), shuffled])
    return out.clamp(-1, 1)


def _match_moments(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    dims = tuple(range(1, x.dim()))
    x = (x - x.mean(dims, keepdim=True)) / x.std(dims, keepdim=True).clamp_min(1e-6)
    return x * like.std(dims, keepdim=True) + like.mean(dims, keepdim=True)


def nt_xent_loss(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent over (B, D) features of two views: each row's positive is its other view,
    the 2B - 2 other rows are negatives (cosine similarity / ``temperature``)."""
    z = nn.functional.normalize(torch.cat([a, b]).float(), dim=1)  # (2B, D)
    similarity = z @ z.T / temperature  # (2B, 2B)
    similarity.fill_diagonal_(float("-inf"))
    n = a.shape[0]
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(a.device)
    return nn.functional.cross_entropy(similarity, positives)


def _index(classes: tuple[str, ...], value: str | None) -> int:
    return classes.index(value) if value in classes else -1
