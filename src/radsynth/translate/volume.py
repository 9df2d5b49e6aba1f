"""Volume in -> slices -> translator -> volume out, with the input's geometry.

Each task says how its model sees a slice (``TaskSpec``): restoration (``denoise``,
``sr2``, ``sr4``) runs at the slice's own resolution, since noise and blur live at the
pixel scale; translation (``mr2ct``, ``t1pd``) runs at the pixel spacing the model was
trained at (the card's median spacing), since anatomy has a physical size, and is
resampled back onto the input grid. Intensities go in through a linear map that is
inverted on the way out (MR: the volume's 0.5-99.5th percentiles; CT: -1024..2000 HU),
except where the output is another modality (``mr2ct``: the CT window the model learnt,
in HU, with air outside the body mask, ``radsynth.evaluate.translation.body_mask``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radsynth.data.normalise import WINDOWS, foreground_mask
from radsynth.data.paired import TRANSLATION_HU_RANGE
from radsynth.errors import GeometryMismatch, InvalidInput
from radsynth.evaluate.translation import body_mask
from radsynth.io import Image
from radsynth.models.card import Card
from radsynth.models.registry import load_pretrained, shipped
from radsynth.models.translator import Translator

AIR_HU = -1000.0


@dataclass(frozen=True)
class TaskSpec:
    """``model``: the shipped checkpoint's kind (``radsynth.models.registry.shipped``);
    ``inputs``: modalities accepted; ``output``: the output's modality (None: the input's);
    ``factor``: in-plane upsampling (SR); ``native``: run at the slice's own resolution
    (else at the model's spacing)."""

    model: str
    inputs: tuple[str, ...]
    output: str | None = None
    factor: int = 1
    native: bool = True
    window: str | None = None


TASKS: dict[str, TaskSpec] = {
    "denoise": TaskSpec("translate-denoise", ("CT", "MR")),
    "sr2": TaskSpec("translate-sr", ("CT", "MR"), factor=2),
    "sr4": TaskSpec("translate-sr", ("CT", "MR"), factor=4),
    "mr2ct": TaskSpec("translate-mr2ct", ("MR",), output="CT", native=False, window="bone"),
    "t1pd": TaskSpec("translate-t1pd", ("MR",), native=False),
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
    folder = Path(weights) if weights is not None else shipped(task_spec(task).model)
    pretrained = load_pretrained(folder, "translate", exported=True)  # slices run on the CPU in fp32
    return LoadedTranslator(pretrained.modules["translator"], pretrained.card)


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
    image: Image, task: str, model: LoadedTranslator, mask: np.ndarray | None = None, on_slice: Any = None
) -> Image:
    """The translated volume: same geometry (SR: the same field of view on a grid
    ``factor`` times finer in-plane), modality and units of the task's output."""
    spec = task_spec(task)
    modality = guess_modality(image)
    forward, backward = _intensity_maps(image, modality, spec)
    out = []
    for k, plane in enumerate(image.array.astype(np.float32)):
        unit = forward(plane)
        if spec.factor > 1:
            unit = _resize(unit, (plane.shape[0] * spec.factor, plane.shape[1] * spec.factor), "bicubic")
        out.append(backward(_run(model, unit, image, spec)))
        if on_slice is not None:
            on_slice(k + 1, image.array.shape[0])
    array = np.stack(out).astype(np.float32)
    if spec.output == "CT":
        mask = body_mask(image, modality) if mask is None else _check_mask(mask, image)
        array = np.where(mask, array, np.float32(AIR_HU))
    result = _refined(image, array, spec.factor) if spec.factor > 1 else image.with_array(array)
    units = "HU" if (spec.output or modality) == "CT" else image.units
    return Image(
        array=result.array,
        spacing=result.spacing,
        origin=result.origin,
        direction=result.direction,
        modality=spec.output or modality,
        units=units,
        metadata={**image.metadata, "translation": task, "model_id": model.model_id},
    )


def _intensity_maps(image: Image, modality: str, spec: TaskSpec):
    """(input -> [0, 1], [0, 1] -> output units): linear, inverted exactly on the way out."""
    if modality == "CT":
        lo, hi = TRANSLATION_HU_RANGE
    else:
        values = image.array[foreground_mask(image.array, "MR")]
        values = values if values.size else image.array.ravel()
        lo, hi = (float(v) for v in np.percentile(values, [0.5, 99.5]))
        hi = hi if hi > lo else lo + 1.0
    if spec.output == "CT":
        level, width = WINDOWS[spec.window or "bone"]
        return (lambda x: (x - lo) / (hi - lo)), (lambda y: level - width / 2 + np.clip(y, 0, 1) * width)
    return (lambda x: (x - lo) / (hi - lo)), (lambda y: lo + y * (hi - lo))


def _run(model: LoadedTranslator, unit: np.ndarray, image: Image, spec: TaskSpec) -> np.ndarray:
    """One slice in [0, 1] through the network (resampled to the model's spacing if asked)."""
    shape = unit.shape
    if not spec.native:
        zoom = float(np.mean(image.spacing[:2])) / model.spacing
        size = (max(8, round(shape[0] * zoom)), max(8, round(shape[1] * zoom)))
        unit = _resize(unit, size, "area" if zoom < 1 else "bicubic")
    x = torch.from_numpy(np.ascontiguousarray(unit, np.float32))[None, None] * 2 - 1  # [0, 1] -> [-1, 1]
    with torch.inference_mode():
        # restoration keeps values beyond the percentile range (inverted exactly later);
        # a translator sees the range it was trained on
        y = (model.net(x if spec.native else x.clamp(-1, 1)).float()[0, 0].numpy() + 1) / 2
    return y if y.shape == shape else _resize(y, shape, "bicubic")


def _resize(array: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    t = torch.from_numpy(np.ascontiguousarray(array, np.float32))[None, None]
    kwargs = {} if mode == "area" else {"align_corners": False}
    return torch.nn.functional.interpolate(t, size=size, mode=mode, **kwargs)[0, 0].numpy()


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
