"""The models radsynth ships, and loading any checkpoint by name or folder.

Shipped weights live in the package (``radsynth/weights/<name>/<kind>/``), each a
checkpoint folder: ``model.safetensors`` + ``card.json``. They are trained here by the
recipes in ``configs/`` (the card says which, with the data sources and licences).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from radsynth.errors import InvalidInput
from radsynth.models.checkpoint import load_card
from radsynth.models.precision import fast_bf16
from radsynth.sampling.pipeline import KINDS, GenerationPipeline

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_MODEL = "demo-ct-mr-64"
DEFAULT_KIND = "ldm"


@dataclass(frozen=True)
class ShippedModel:
    """One shipped checkpoint: ``name`` (the family, e.g. demo-ct-mr-64) and ``kind``."""

    name: str
    kind: str
    folder: Path

    def card(self) -> dict[str, Any]:
        return load_card(self.folder)


def list_models() -> list[ShippedModel]:
    """Every shipped checkpoint, by family then kind."""
    found = []
    for family in sorted(p for p in WEIGHTS.glob("*") if p.is_dir()):
        for kind in KINDS:
            if (family / kind / "card.json").is_file():
                found.append(ShippedModel(family.name, kind, family / kind))
    return found


def resolve_checkpoint(name: str | Path = DEFAULT_MODEL, kind: str = DEFAULT_KIND) -> Path:
    """The checkpoint folder for a shipped family + kind, or ``name`` itself when it is a
    checkpoint folder (a ``card.json`` inside, e.g. ``runs/ldm-demo-64/model``)."""
    if kind not in KINDS:
        raise InvalidInput(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
    folder = Path(name)
    if (folder / "card.json").is_file():
        return folder
    shipped = WEIGHTS / str(name) / kind
    if (shipped / "card.json").is_file():
        return shipped
    families = sorted({m.name for m in list_models()})
    known = ", ".join(families) if families else "none installed"
    if (WEIGHTS / str(name)).is_dir():
        kinds = ", ".join(m.kind for m in list_models() if m.name == str(name))
        raise InvalidInput(f"model {name!r} ships no {kind!r} checkpoint (it has: {kinds})")
    raise InvalidInput(f"unknown model {str(name)!r}: not a shipped model ({known}) nor a checkpoint folder")


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_pipeline(
    name: str | Path = DEFAULT_MODEL,
    kind: str = DEFAULT_KIND,
    *,
    device: str | torch.device | None = None,
    bf16: bool | None = None,
    batch_size: int = 16,
    compile: bool = False,
    fast_attention: bool = True,
    distilled: bool = True,
) -> GenerationPipeline:
    """A ready generation pipeline: ``load_pipeline("demo-ct-mr-64").generate(prompt, n=16)``.

    ``name`` is a shipped model family or a checkpoint folder; ``kind`` is ``ldm``, ``gan``
    or ``vae``. ``device`` defaults to CUDA when present; ``bf16`` defaults to on where the
    hardware runs bf16 faster than float32 (see ``radsynth.models.precision``); ``compile``
    compiles the UNet (pays only after its first batch: see ``GenerationPipeline``);
    ``fast_attention`` fuses MONAI's attention (same function, other rounding; on by
    default, ``False`` gives MONAI's own einsum path bit for bit); ``distilled`` uses the
    guidance-distilled UNet shipped beside an LDM at its scale (``False``: the guided
    teacher, two UNet rows per image and step). A
    checkpoint folder's own card says its kind, so ``kind`` only picks among a shipped
    family's.
    """
    device = torch.device(device) if device is not None else default_device()
    if bf16 is None:
        bf16 = fast_bf16(device)
    folder = resolve_checkpoint(name, kind)
    return GenerationPipeline.from_checkpoint(
        folder,
        device=device,
        bf16=bf16,
        batch_size=batch_size,
        compile=compile,
        fast_attention=fast_attention,
        distilled=distilled,
    )
