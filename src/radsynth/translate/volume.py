"""Volume in -> slices -> translator -> volume out, with the input's geometry.

Each task says how its model sees a slice (``TaskSpec``): restoration (``denoise``,
``sr2``, ``sr4``) runs at the slice's own resolution, since noise and blur live at the
pixel scale; translation (``mr2ct``, ``t1pd``, ``mr2ct-atlas`` and the contrast tasks)
runs at the pixel spacing the model was trained at (the card's median spacing), since
anatomy has a physical size, and is resampled back onto the input grid. Intensities go in
through a linear map that is inverted on the way out (MR: the volume's 0.5-99.5th
percentiles; restoration from 0, "no signal", to the 99.5th; the contrast tasks 0 and
the commonest brain intensity, as the multi-contrast ingest scales; CT: -1024..2000 HU),
except where the output is another modality (``mr2ct``:
the CT window the model learnt, in HU, with air outside the body mask,
``radsynth.evaluate.translation.body_mask``; ``mr2ct-atlas``: the Whole Brain Atlas's
8-bit CT scale, not HU, from MR scaled as the atlas's 8-bit display images are). A
contrast task (``t1-t2``, ``t2-flair``, ``t1-flair``, ``t1t2-flair``) takes one volume per
named input contrast, all on one grid;
its output is on the first input's intensity scale (MR has no absolute units).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radsynth import DEFAULT_FAMILY
from radsynth.data.normalise import WINDOWS, foreground_mask, tissue_mode_scale
from radsynth.data.paired import TRANSLATION_HU_RANGE, geometry_difference
from radsynth.errors import GeometryMismatch, InvalidInput
from radsynth.evaluate.translation import body_mask
from radsynth.io import Image
from radsynth.models.card import Card
from radsynth.models.registry import load_pretrained, shipped
from radsynth.models.translator import Translator

AIR_HU = -1000.0
REAL_BRAIN_FAMILY = "brain-real"  # translators learnt from real brain pairs (issue 20)
ATLAS_SCALE = (0.0, 255.0)  # the Whole Brain Atlas CT's 8-bit values: windowed, not HU
# Skull-stripped volumes (BraTS-style: exactly 0 outside the brain) have their brain as
# the foreground; the contrast translators learnt intensities normalised that way
STRIPPED_ZERO_FRACTION = 0.1


@dataclass(frozen=True)
class TaskSpec:
    """``model``: the shipped checkpoint's kind (``radsynth.models.registry.shipped``);
    ``inputs``: modalities accepted; ``output``: the output's modality (None: the input's);
    ``factor``: in-plane upsampling (SR); ``native``: run at the slice's own resolution
    (else at the model's spacing); ``window``: the CT window a CT output is written in, or
    ``scale`` its value range where it is not HU (the atlas); ``family``: the shipped
    family holding ``model``; ``contrasts``: the named input volumes (contrast tasks)."""

    model: str
    inputs: tuple[str, ...]
    output: str | None = None
    factor: int = 1
    native: bool = True
    window: str | None = None
    scale: tuple[float, float] | None = None
    display: bool = False
    family: str | None = None
    contrasts: tuple[str, ...] = ()


def _contrast_task(*contrasts: str, target: str) -> TaskSpec:
    name = "".join(contrasts) + "-" + target
    return TaskSpec(f"translate-{name}", ("MR",), native=False, family=REAL_BRAIN_FAMILY, contrasts=contrasts)


TASKS: dict[str, TaskSpec] = {
    "denoise": TaskSpec("translate-denoise", ("CT", "MR")),
    "sr2": TaskSpec("translate-sr", ("CT", "MR"), factor=2),
    "sr4": TaskSpec("translate-sr", ("CT", "MR"), factor=4),
    "mr2ct": TaskSpec("translate-mr2ct", ("MR",), output="CT", native=False, window="bone"),
    "t1pd": TaskSpec("translate-t1pd", ("MR",), native=False),
    "mr2ct-atlas": TaskSpec(
        "translate-mr2ct-atlas",
        ("MR",),
        "CT",
        native=False,
        scale=ATLAS_SCALE,
        display=True,
        family=REAL_BRAIN_FAMILY,
    ),
    "t1-t2": _contrast_task("t1", target="t2"),
    "t2-flair": _contrast_task("t2", target="flair"),
    "t1-flair": _contrast_task("t1", target="flair"),
    "t1t2-flair": _contrast_task("t1", "t2", target="flair"),
}


@dataclass
class LoadedTranslator:
    """A translator network with its card (``spacing``: the training pixel spacing, mm)."""

    net: Translator
    card: Card

    @property
    def model_id(self) -> str:
        return self.card.model_id or "translator"

    @property
    def spacing(self) -> float:
        return float(np.mean(self.card.spacing or [1.0]))


def task_spec(task: str) -> TaskSpec:
    if task not in TASKS:
        raise InvalidInput(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    return TASKS[task]


def load_translator(task: str, weights: str | Path | None = None) -> LoadedTranslator:
    """The shipped model of ``task``, or a ``radsynth train`` model folder (``weights``)."""
    if weights is not None:
        folder = Path(weights)
    else:
        spec = task_spec(task)
        folder = shipped(spec.model, spec.family or DEFAULT_FAMILY)
    pretrained = load_pretrained(folder, "translate", exported=True)  # slices run on the CPU in fp32
    return LoadedTranslator(pretrained.modules["translator"], pretrained.card)


def check_inputs(images: Sequence[Image], task: str, sources: Sequence[str | Path]) -> None:
    """Each input as :func:`check_input`, and every one on the first's grid (a contrast
    task's volumes are translated voxel for voxel)."""
    for image, source in zip(images, sources, strict=True):
        check_input(image, task, source)
    for image, source in zip(images[1:], sources[1:], strict=True):
        why = geometry_difference(images[0], image)
        if why:
            raise GeometryMismatch(f"not on the grid of {Path(sources[0]).name} ({why})", source)


def check_input(image: Image, task: str, source: str | Path = "input") -> None:
    """Refuse what the task cannot use, in one line naming the file."""
    spec = task_spec(task)
    if image.spatial_ndim != 3 or image.spatial_shape[0] < 2:
        what = f"{image.spatial_ndim}D image" if image.spatial_ndim != 3 else "2D image (one slice)"
        raise InvalidInput(f"expected a 3D volume, got a {what}", source)
    if image.rgb:
        raise InvalidInput("expected a grey volume, got RGB", source)
    if not np.isfinite(image.array).all():
        raise InvalidInput("the volume holds NaN or infinite values", source)
    modality = guess_modality(image)
    if modality not in spec.inputs:
        raise InvalidInput(
            f"task {task} needs {' or '.join(spec.inputs)}, this volume looks like {modality}", source
        )


def guess_modality(image: Image) -> str:
    """The stated modality, else CT when values reach below -500 (HU of air), else MR."""
    if image.modality in ("CT", "MR"):
        return image.modality
    return "CT" if float(np.min(image.array)) < -500 else "MR"


def translate_volume(
    image: Image | Sequence[Image],
    task: str,
    model: LoadedTranslator,
    mask: np.ndarray | None = None,
    on_slice: Any = None,
) -> Image:
    """The translated volume: same geometry (SR: the same field of view on a grid
    ``factor`` times finer in-plane), modality and units of the task's output. A contrast
    task takes its input volumes in ``TaskSpec.contrasts`` order, on one grid."""
    spec = task_spec(task)
    images = [image] if isinstance(image, Image) else list(image)
    image = images[0]
    modality = guess_modality(image)
    maps = [_intensity_maps(im, modality, spec) for im in images]
    backward = maps[0][1]
    out = []
    for k in range(image.array.shape[0]):
        planes = [im.array[k].astype(np.float32) for im in images]
        unit = np.stack([forward(p) for (forward, _), p in zip(maps, planes, strict=True)])
        if spec.factor > 1:
            shape = (planes[0].shape[0] * spec.factor, planes[0].shape[1] * spec.factor)
            unit = _resize(unit, shape, "bicubic")
        out.append(backward(_run(model, unit, image, spec)))
        if on_slice is not None:
            on_slice(k + 1, image.array.shape[0])
    array = np.stack(out).astype(np.float32)
    if spec.output == "CT" and (mask is not None or not spec.display):
        # HU outputs get exact air outside the body; the atlas model draws its own black
        # background, and a threshold mask of the MR would cut its skull (bone is dark on
        # MR): there only a given mask applies
        mask = body_mask(image, modality) if mask is None else _check_mask(mask, image)
        air = np.float32(spec.scale[0] if spec.scale else AIR_HU)
        array = np.where(mask, array, air)
    elif spec.contrasts and _stripped(image.array):
        array = np.where(image.array != 0, array, np.float32(0))  # the background stays empty
    result = _refined(image, array, spec.factor) if spec.factor > 1 else image.with_array(array)
    units = ("HU" if spec.scale is None else "") if (spec.output or modality) == "CT" else image.units
    return Image(
        array=result.array,
        spacing=result.spacing,
        origin=result.origin,
        direction=result.direction,
        modality=spec.output or modality,
        units=units,
        metadata={**image.metadata, "translation": task, "model_id": model.model_id}
        | ({"scale": "Whole Brain Atlas 8-bit CT (windowed; not HU)"} if spec.scale else {}),
    )


def _intensity_maps(image: Image, modality: str, spec: TaskSpec):
    """(input -> [0, 1], [0, 1] -> output units): linear, inverted exactly on the way out."""
    if modality == "CT":
        lo, hi = TRANSLATION_HU_RANGE
    else:
        stripped = spec.contrasts and _stripped(image.array)
        values = image.array[(image.array != 0) if stripped else foreground_mask(image.array, "MR")]
        values = values if values.size else image.array.ravel()
        if spec.contrasts:  # as the multi-contrast ingest scaled the training volumes
            lo, hi = tissue_mode_scale(values)
        elif spec.display:
            lo, hi = 0.0, float(np.percentile(values, 99.9))
        elif spec.native:  # restoration: 0 stays "no signal", where Rician noise lifts most
            lo, hi = 0.0, float(np.percentile(values, 99.5))
        else:
            lo, hi = (float(v) for v in np.percentile(values, [0.5, 99.5]))
        hi = hi if hi > lo else lo + 1.0
    if spec.output == "CT":
        level, width = WINDOWS[spec.window or "bone"]
        bottom, span = (
            (spec.scale[0], spec.scale[1] - spec.scale[0]) if spec.scale else (level - width / 2, width)
        )
        return (lambda x: (x - lo) / (hi - lo)), (lambda y: bottom + np.clip(y, 0, 1) * span)
    return (lambda x: (x - lo) / (hi - lo)), (lambda y: lo + y * (hi - lo))


def _stripped(array: np.ndarray) -> bool:
    """A skull-stripped volume: a large share of voxels exactly 0 (the removed head)."""
    return float(np.mean(array == 0)) > STRIPPED_ZERO_FRACTION


def _run(model: LoadedTranslator, unit: np.ndarray, image: Image, spec: TaskSpec) -> np.ndarray:
    """One slice's inputs (C, H, W) in [0, 1] through the network (resampled to the model's
    spacing if asked): (H, W) in [0, 1]."""
    shape = unit.shape[-2:]
    if not spec.native:
        zoom = float(np.mean(image.spacing[:2])) / model.spacing
        size = (max(8, round(shape[0] * zoom)), max(8, round(shape[1] * zoom)))
        unit = _resize(unit, size, "area" if zoom < 1 else "bicubic")
    x = torch.from_numpy(np.ascontiguousarray(unit, np.float32))[None] * 2 - 1  # [0, 1] -> [-1, 1]
    with torch.inference_mode():
        # restoration keeps values beyond the percentile range (inverted exactly later);
        # a translator sees the range it was trained on
        y = (model.net(x if spec.native else x.clamp(-1, 1)).float()[0, 0].numpy() + 1) / 2
    return y if y.shape == shape else _resize(y, shape, "bicubic")


def _resize(array: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """Resize the last two axes of (H, W) or (C, H, W)."""
    t = torch.from_numpy(np.ascontiguousarray(array, np.float32))
    batch = t[None, None] if t.dim() == 2 else t[None]
    kwargs = {} if mode == "area" else {"align_corners": False}
    out = torch.nn.functional.interpolate(batch, size=size, mode=mode, **kwargs)[0].numpy()
    return out[0] if t.dim() == 2 else out


def _refined(image: Image, array: np.ndarray, factor: int) -> Image:
    """The same field of view on a grid ``factor`` times finer in x and y: spacing / factor,
    the first pixel centre moved so the edges of the volume stay where they were."""
    spacing = np.array(image.spacing, float)
    new = spacing.copy()
    new[:2] /= factor
    shift = np.zeros(3)
    shift[:2] = (new[:2] - spacing[:2]) / 2  # (x, y): half a new pixel minus half an old one
    origin = np.asarray(image.origin) + np.asarray(image.direction) @ shift
    return Image(
        array, spacing=tuple(new), origin=tuple(origin), direction=image.direction, modality=image.modality
    )


def _check_mask(mask: np.ndarray, image: Image) -> np.ndarray:
    mask = np.asarray(mask) > 0
    if mask.shape != image.spatial_shape:
        raise GeometryMismatch(f"mask of shape {mask.shape} does not fit the volume's {image.spatial_shape}")
    if not mask.any():
        raise InvalidInput("the body mask is empty")
    return mask
