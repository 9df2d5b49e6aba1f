"""The generators radsynth ships, and loading any generator checkpoint by name or folder.

Shipped weights live in the package (``radsynth.models.registry.SHIPPED_WEIGHTS``:
``<family>/<kind>/``), each a checkpoint folder: ``model.safetensors`` + ``card.json``.
They are trained here by the recipes in ``configs/`` (the card says which, with the data
sources and licences). A family whose generators draw at N pixels and that ships a x2
super-resolution stage beside them (``<family>/translate-sr2/``: a ``translate`` card of
``mode: sr``) also draws at 2N, as a cascade (``radsynth.sampling.cascade``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from radsynth.errors import CheckpointMismatch, InvalidInput
from radsynth.models.checkpoint import CARD
from radsynth.models.registry import (
    DEFAULT_FAMILY,
    ShippedModel,
    checkpoint_folder,
    load_pretrained,
    read_card,
    shipped_models,
)
from radsynth.sampling.cascade import SuperResolution
from radsynth.sampling.pipeline import KINDS, GenerationPipeline

DEFAULT_KIND = "ldm"
SUPER_RESOLUTION = "translate-sr2"  # the family's x2 stage, a folder beside its generators
SUPER_RESOLUTION_FACTOR = 2


def list_models() -> list[ShippedModel]:
    """Every shipped generator checkpoint (``KINDS``), by family then kind."""
    return [m for m in shipped_models() if m.kind in KINDS]


def resolve_checkpoint(name: str | Path = DEFAULT_FAMILY, kind: str = DEFAULT_KIND) -> Path:
    """The checkpoint folder for a shipped family + generator kind, or ``name`` itself when
    it is a checkpoint folder (a ``card.json`` inside, e.g. ``runs/ldm-demo-64/model``)."""
    if kind not in KINDS:
        raise InvalidInput(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
    return checkpoint_folder(name, kind)


def output_sizes(checkpoint: str | Path) -> dict[int, Path | None]:
    """Image sides (pixels) a generator checkpoint's family draws, each with the
    super-resolution stage it needs (None: the generator's own size)."""
    checkpoint = Path(checkpoint)
    size = read_card(checkpoint).image_size
    if size is None:
        raise CheckpointMismatch(
            "card has no task_info.image.size (pixels of the training images)", checkpoint
        )
    sizes: dict[int, Path | None] = {size[-1]: None}
    stage = checkpoint.parent / SUPER_RESOLUTION
    if (stage / CARD).is_file():
        sizes[size[-1] * SUPER_RESOLUTION_FACTOR] = stage
    return sizes


def super_resolution(folder: str | Path) -> SuperResolution:
    """The x2 stage in ``folder``: a translator whose card says it restores resolution."""
    pretrained = load_pretrained(folder, "translate", exported=True)
    mode = (pretrained.card.task_info.get("translation") or {}).get("mode")
    if mode != "sr":
        raise CheckpointMismatch(f"not a super-resolution translator (its card says mode {mode!r})", folder)
    model_id = pretrained.card.model_id or Path(folder).name
    return SuperResolution(pretrained.modules["translator"], SUPER_RESOLUTION_FACTOR, model_id)


def check_size(checkpoint: str | Path, size: int | None) -> Path | None:
    """The super-resolution stage ``size`` needs (None: none), or one line naming the sizes
    the family draws."""
    sizes = output_sizes(checkpoint)
    if size is None:
        return None
    if size not in sizes:
        known = " or ".join(str(s) for s in sorted(sizes))
        raise InvalidInput(f"size {size}: this model draws images of {known} pixels a side")
    return sizes[size]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_pipeline(
    name: str | Path = DEFAULT_FAMILY,
    kind: str = DEFAULT_KIND,
    *,
    device: str | torch.device | None = None,
    precision: str = "auto",
    batch_size: int = 16,
    compile: bool = False,
    fast_attention: bool = True,
    distilled: bool = True,
    exported: bool = True,
    size: int | None = None,
) -> GenerationPipeline:
    """A ready generation pipeline: ``load_pipeline().generate(prompt, n=16)``.

    ``name`` is a shipped model family or a checkpoint folder; ``kind`` is ``ldm``, ``gan``
    or ``vae``. ``device`` defaults to CUDA when present; ``precision`` is ``fp32``,
    ``bf16`` or ``auto`` (bf16 where the hardware runs it faster than float32, see
    ``radsynth.models.precision``; only fp32 keeps image i the same at any batch size);
    ``compile`` compiles the UNet (pays only after its first batch: see
    ``GenerationPipeline.from_checkpoint``); ``fast_attention`` fuses MONAI's attention
    (same function, other rounding; on by default, ``False`` gives MONAI's own einsum
    path bit for bit); ``distilled`` uses the guidance-distilled UNet shipped beside an
    LDM at its scale (``False``: the guided teacher, two UNet rows per image and step). A
    checkpoint folder's own card says its kind, so ``kind`` only picks among a shipped
    family's. ``exported``: run the shipped inference traces where they apply (fast start,
    same images); ``False`` loads the eager networks, which whatever needs more than
    sampling uses (a membership attack reads the VAE's encoder and the training loss).
    ``size``: the side of the images in pixels (None: the generator's own; twice that runs
    the family's super-resolution stage, where it ships one: ``output_sizes``).
    """
    folder = resolve_checkpoint(name, kind)
    stage = check_size(folder, size)
    return GenerationPipeline.from_checkpoint(
        folder,
        device=device if device is not None else default_device(),
        precision=precision,
        batch_size=batch_size,
        compile=compile,
        fast_attention=fast_attention,
        distilled=distilled,
        exported=exported,
        upscale=None if stage is None else super_resolution(stage),
    )
