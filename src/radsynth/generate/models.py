"""The generators radsynth ships, and loading any generator checkpoint by name or folder.

Shipped weights live in the package (``radsynth.models.registry.SHIPPED_WEIGHTS``:
``<family>/<kind>/``), each a checkpoint folder: ``model.safetensors`` + ``card.json``.
They are trained here by the recipes in ``configs/`` (the card says which, with the data
sources and licences).
"""

from __future__ import annotations

from pathlib import Path

import torch

from radsynth.errors import InvalidInput
from radsynth.models.registry import DEFAULT_FAMILY, ShippedModel, checkpoint_folder, shipped_models
from radsynth.sampling.pipeline import KINDS, GenerationPipeline

DEFAULT_KIND = "ldm"


def list_models() -> list[ShippedModel]:
    """Every shipped generator checkpoint (``KINDS``), by family then kind."""
    return [m for m in shipped_models() if m.kind in KINDS]


def resolve_checkpoint(name: str | Path = DEFAULT_FAMILY, kind: str = DEFAULT_KIND) -> Path:
    """The checkpoint folder for a shipped family + generator kind, or ``name`` itself when
    it is a checkpoint folder (a ``card.json`` inside, e.g. ``runs/ldm-demo-64/model``)."""
    if kind not in KINDS:
        raise InvalidInput(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
    return checkpoint_folder(name, kind)


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
    """
    return GenerationPipeline.from_checkpoint(
        resolve_checkpoint(name, kind),
        device=device if device is not None else default_device(),
        precision=precision,
        batch_size=batch_size,
        compile=compile,
        fast_attention=fast_attention,
        distilled=distilled,
        exported=exported,
    )
