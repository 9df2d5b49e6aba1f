"""Training images from a manifest: ``{"image", "text", "modality", "labels"}`` samples.

Pixels come from the manifest's PNGs (a normalised slice in [0, 1], stored as 8- or
16-bit codes) and leave as float32 (1, H, W) in [-1, 1], the networks' range.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from radsynth.data.manifest import Record, load_manifest, read_unit_image, resolve_manifest
from radsynth.errors import InvalidInput
from radsynth.models.intensity import to_model_range
from radsynth.train.config import CorpusSelection, DataConfig

ANY_SPLIT = "any"


@dataclass(frozen=True)
class TrainingData:
    """The records a run trains on and where they came from (for the card)."""

    manifest: str
    path: Path
    records: tuple[Record, ...]

    @property
    def captions(self) -> list[str]:
        return [r.text for r in self.records]

    def sources(self) -> list[dict[str, Any]]:
        """``[{source, licence, count}]``: what the card says the model was trained on."""
        counts = Counter((r.source, r.licence) for r in self.records)
        return [{"source": s, "licence": lic, "count": n} for (s, lic), n in sorted(counts.items())]

    def spacing(self) -> list[float] | None:
        """Median pixel spacing (mm, x then y) of the records that state one."""
        known = [r.spacing for r in self.records if r.spacing]
        return [float(v) for v in np.median(np.asarray(known, float), axis=0)] if known else None


def select_records(config: DataConfig) -> TrainingData:
    """The manifest's records in ``config.split`` (``any``: every split, for cross-validation,
    whose folds pick cases with ``where: {subject: [...]}``) with one of ``config.modalities``,
    then those of each ``config.also`` corpus, their image paths made absolute (one
    :class:`TrainingData` resolves every record against the first manifest)."""
    path, chosen = _select(config)
    for extra in config.also:
        extra_path, extra_records = _select(extra)
        base = extra_path.resolve()
        chosen += tuple(dataclasses.replace(r, path=str(r.resolve(base))) for r in extra_records)
    name = " + ".join([config.manifest, *(extra.manifest for extra in config.also)])
    return TrainingData(name, path, chosen)


def _select(config: DataConfig | CorpusSelection) -> tuple[Path, tuple[Record, ...]]:
    path = resolve_manifest(config.manifest)
    records = load_manifest(path)
    wanted = {m.upper() for m in config.modalities}
    chosen = tuple(
        r
        for r in records
        if config.split in (r.split, ANY_SPLIT)
        and (not wanted or r.modality.upper() in wanted)
        and all(_field(r, k) in _as_list(v) for k, v in config.where.items())
    )
    if not chosen:
        what = f"split {config.split!r}" + (f" and modalities {sorted(wanted)}" if wanted else "")
        what += f" and {config.where}" if config.where else ""
        raise InvalidInput(f"no records with {what}", path)
    return path, chosen


def _field(record: Record, name: str) -> Any:
    return getattr(record, name) if hasattr(record, name) else (record.labels or {}).get(name)


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, list | tuple) else [value]


class ManifestDataset(Dataset):
    """Samples of a :class:`TrainingData`, made ``image_size`` square when they differ
    (``fit``: see :class:`DataConfig`)."""

    def __init__(self, data: TrainingData, image_size: int, fit: str) -> None:
        self.data = data
        self.image_size = image_size
        self.fit = fit

    def __len__(self) -> int:
        return len(self.data.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.data.records[index]
        unit = read_unit_image(record.resolve(self.data.path))
        image = torch.from_numpy(unit)[None]  # (1, H, W)
        h, w = image.shape[-2:]
        if self.fit == "pad" and h <= self.image_size and w <= self.image_size:
            top, left = (self.image_size - h) // 2, (self.image_size - w) // 2
            pad = (left, self.image_size - w - left, top, self.image_size - h - top)
            image = torch.nn.functional.pad(image, pad)
        if image.shape[-2:] != (self.image_size, self.image_size):
            size = (self.image_size, self.image_size)
            image = torch.nn.functional.interpolate(
                image[None], size=size, mode="bilinear", antialias=True, align_corners=False
            )[0].clamp(0, 1)
        return {
            "index": index,
            "image": to_model_range(image),
            "text": record.text,
            "modality": record.modality,
            "labels": dict(record.labels),
        }


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack images; keep text, modality and labels as lists."""
    return {
        "index": torch.tensor([s["index"] for s in samples]),  # (B,) positions in the records
        "image": torch.stack([s["image"] for s in samples]),  # (B, 1, H, W)
        "text": [s["text"] for s in samples],
        "modality": [s["modality"] for s in samples],
        "labels": [s["labels"] for s in samples],
    }


def shift_augment(images: torch.Tensor, max_shift: int = 2) -> torch.Tensor:
    """Random translations of up to ``max_shift`` pixels, edges replicated (global RNG,
    which the loop seeds per step). No flips: captions name the side of a finding."""
    b = images.shape[0]
    padded = torch.nn.functional.pad(images, (max_shift,) * 4, mode="replicate")
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, b)).tolist()
    h, w = images.shape[-2:]
    return torch.stack([padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w] for i in range(b)])
