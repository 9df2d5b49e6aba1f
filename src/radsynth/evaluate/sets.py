"""Image sets for evaluation: real slices from a manifest, synthetic ones from a manifest
or from folders that ``radsynth generate`` wrote.

Every set is brought to the display range [0, 1] the generators were trained in, so real
and synthetic pixels are compared in the same units: a manifest's PNGs through their
``radsynth:value_range``; a generated PNG through its codes (written over the display
window); a generated DICOM or NIfTI through the CT window its batch card names (MR stays
in [0, 1]). Each image keeps its text (caption or prompt), modality, the attributes the
utility and adherence checks need, and its group (the subject for real images, the
prompt for synthetic ones).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from radsynth.data.confine import Confinement
from radsynth.data.manifest import Record, load_manifest, read_unit_image
from radsynth.data.normalise import WINDOWS
from radsynth.errors import InvalidInput, NotEnoughSamples, SetMismatch
from radsynth.evaluate.adherence import prompt_attributes
from radsynth.train.tasks.classifier import record_attribute

ATTRIBUTES = ("modality", "anatomy", "finding")
BATCH_CARD = "generation.json"


@dataclass(frozen=True)
class ImageSet:
    """N same-sized 2D images in [0, 1] with what is known about each.

    ``images``: (N, H, W) float32. ``attributes[name][i]`` is None where image i does not
    state it. ``groups``: subject (real) or prompt (synthetic), the unit that must not be
    split between training and testing.
    """

    name: str
    images: np.ndarray
    texts: tuple[str, ...]
    modalities: tuple[str, ...]
    attributes: dict[str, tuple[str | None, ...]]
    groups: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.images)

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.images.shape[1:])

    def subset(self, keep: np.ndarray | list[int]) -> ImageSet:
        """The images at indices (or boolean mask) ``keep``, in that order."""
        index = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.asarray(keep, int)

        def pick(values: tuple) -> tuple:
            return tuple(values[i] for i in index)

        return ImageSet(
            self.name,
            self.images[index],
            pick(self.texts),
            pick(self.modalities),
            {k: pick(v) for k, v in self.attributes.items()},
            pick(self.groups),
        )

    def sample(self, n: int, rng: np.random.Generator) -> ImageSet:
        """At most ``n`` images drawn without replacement, kept in their order."""
        return self.subset(np.sort(rng.permutation(len(self))[:n]))

    def resized(self, size: tuple[int, int]) -> ImageSet:
        """The same set resampled to ``size`` pixels (bilinear, antialiased)."""
        if self.size == tuple(size):
            return self
        x = torch.from_numpy(self.images)[:, None]  # (N, 1, H, W)
        x = torch.nn.functional.interpolate(x, size=tuple(size), mode="bilinear", antialias=True)
        images = x[:, 0].clamp(0, 1).numpy().astype(np.float32)
        return ImageSet(self.name, images, self.texts, self.modalities, self.attributes, self.groups)


def synthetic_set(name: str, images: list[np.ndarray], prompts: list[str]) -> ImageSet:
    """An in-memory generated set (e.g. ``pipeline.generate`` arrays in [0, 1]) with its
    prompts: attributes as the prompts state them, grouped by prompt."""
    items = []
    for image, prompt in zip(images, prompts, strict=True):
        attributes = prompt_attributes(prompt)
        items.append(
            _Item(
                np.asarray(image, np.float32),
                prompt,
                attributes["modality"] or "OT",
                attributes,
                prompt,
                Path(name),
            )
        )
    if not items:
        raise NotEnoughSamples(f"{name} set is empty")
    return _assemble(name, items, False)


def load_set(
    path: str | Path,
    name: str,
    splits: tuple[str, ...] = (),
    resample: bool = False,
    within: Confinement | None = None,
) -> ImageSet:
    """A manifest (``.jsonl``) or a folder of generated batches (``generation.json`` inside,
    at any depth). ``splits`` keeps only those manifest splits; ``resample`` brings images
    of differing sizes to the most common size instead of refusing them. ``within``: every
    file a record or card names must lie there (relative, no ``..``), checked before it is
    opened: how the service reads a manifest a client chose."""
    path = Path(path)
    if within is not None and not within.allows(path):
        raise InvalidInput(f"{name} set lies outside the folder this request may read", path.name)
    if path.is_dir():
        items = _generated_items(path, within)
    elif path.is_file():
        items = _manifest_items(path, splits, within)
    else:
        raise InvalidInput(f"{name} set: no such manifest or folder", path)
    if not items:
        raise NotEnoughSamples(
            f"{name} set is empty" + (f" (splits {', '.join(splits)})" if splits else ""), path
        )
    return _assemble(name, items, resample)


@dataclass(frozen=True)
class _Item:
    image: np.ndarray
    text: str
    modality: str
    attributes: dict[str, str | None]
    group: str
    where: Path


def _manifest_items(path: Path, splits: tuple[str, ...], within: Confinement | None) -> list[_Item]:
    records = [r for r in load_manifest(path) if not splits or r.split in splits]
    if within is not None:  # every record checked before any image is opened
        for record in records:
            within.entry(path.parent, record.path, path.name)
    return [_record_item(r, path) for r in records]


def _record_item(record: Record, manifest: Path) -> _Item:
    """A real record's attributes come from its structured facts; a record without them
    (a synthetic manifest) falls back to what its text states."""
    from_text = prompt_attributes(record.text)
    attributes = {a: record_attribute(record, a) or from_text.get(a) for a in ATTRIBUTES}
    where = record.resolve(manifest)
    return _Item(read_unit_image(where), record.text, record.modality, attributes, record.subject, where)


def _generated_items(folder: Path, within: Confinement | None) -> list[_Item]:
    cards = sorted(folder.rglob(BATCH_CARD))
    if within is not None:
        cards = [card for card in cards if within.allows(card)]
    if not cards:
        raise InvalidInput(f"no {BATCH_CARD} below this folder: not written by radsynth generate", folder)
    return [item for card in cards for item in _batch_items(card, within)]


def _batch_items(card_path: Path, within: Confinement | None) -> list[_Item]:
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise InvalidInput(f"unreadable batch card ({err})", card_path) from None
    prompt = str(card.get("prompt", ""))
    attributes = prompt_attributes(prompt)
    modality = attributes["modality"] or str(card.get("modality", "OT"))
    items = []
    for output in card.get("files", []):
        written = str(output["file"])
        if within is None:
            where = card_path.parent / written
        else:
            where = within.entry(card_path.parent, written, BATCH_CARD)
        unit = _display_unit(where, output.get("window"))
        items.append(_Item(unit, prompt, modality, attributes, prompt, where))
    return items


def _display_unit(path: Path, window: str | None) -> np.ndarray:
    """A generated file's pixels in the [0, 1] display range they were drawn in."""
    from radsynth.io.read import read_image

    image = read_image(path)
    array = np.asarray(image.array, np.float32)
    if path.suffix.lower() == ".png":
        top = float(np.iinfo(image.array.dtype).max) if image.array.dtype.kind in "ui" else 1.0
        return np.clip(array / top, 0, 1)
    lo, hi = (0.0, 1.0)
    if window in WINDOWS:
        level, width = WINDOWS[window]
        lo, hi = level - width / 2, level + width / 2
    return np.clip((np.squeeze(array) - lo) / (hi - lo), 0, 1)


def _assemble(name: str, items: list[_Item], resample: bool) -> ImageSet:
    for item in items:
        if item.image.ndim != 2:
            raise SetMismatch(f"{name} set: expected 2D slices, got shape {item.image.shape}", item.where)
        if not np.isfinite(item.image).all():
            raise InvalidInput(f"{name} set: image contains NaN or infinite values", item.where)
    sizes = Counter(item.image.shape for item in items)
    common = sizes.most_common(1)[0][0]
    if len(sizes) > 1 and not resample:
        odd = next(item for item in items if item.image.shape != common)
        raise SetMismatch(
            f"{name} set mixes image sizes {sorted(sizes)}; pass --resample to resize to {common}", odd.where
        )
    images = np.stack([_resize(item.image, common) for item in items]).astype(np.float32)
    return ImageSet(
        name,
        images,
        tuple(i.text for i in items),
        tuple(i.modality for i in items),
        {a: tuple(i.attributes.get(a) for i in items) for a in ATTRIBUTES},
        tuple(i.group for i in items),
    )


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if image.shape == size:
        return image
    x = torch.from_numpy(np.ascontiguousarray(image, np.float32))[None, None]
    return torch.nn.functional.interpolate(x, size=size, mode="bilinear", antialias=True)[0, 0].numpy()


def check_comparable(real: ImageSet, other: ImageSet, resample: bool = False) -> ImageSet:
    """``other`` made comparable with ``real``: same image size (resampled only when
    asked) and no modality that ``real`` lacks (a CT-only synthetic set cannot be judged
    against MR). Raises ``SetMismatch`` naming the difference."""
    if other.size != real.size:
        if not resample:
            raise SetMismatch(
                f"{other.name} images are {other.size[0]}x{other.size[1]} but {real.name} images are "
                f"{real.size[0]}x{real.size[1]}; pass --resample to resize {other.name} to {real.name}"
            )
        other = other.resized(real.size)
    extra = sorted(set(other.modalities) - set(real.modalities))
    if extra:
        raise SetMismatch(
            f"{other.name} set has modality {', '.join(extra)} that the {real.name} set lacks "
            f"({', '.join(sorted(set(real.modalities)))}); evaluate like against like"
        )
    return other


def require(n: int, need: int, what: str) -> None:
    """Refuse a metric on fewer than ``need`` samples (``NotEnoughSamples``)."""
    if n < need:
        raise NotEnoughSamples(f"{what}: not enough samples: need >= {need}, got {n}")
