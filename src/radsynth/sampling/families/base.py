"""The one small interface every generator family meets, so the pipeline around it
(requests, batching, seeds, precision, image facts) never asks which family it runs.

A family is a class with a ``from_card`` constructor registered in
``radsynth.sampling.families.GENERATORS`` under its card's task; the chest X-ray
cascade or a 3D model is one more module and one more entry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from radsynth.errors import CheckpointMismatch
from radsynth.models.card import Card
from radsynth.models.diffusion import Cond
from radsynth.text.base import TextEncoder
from radsynth.text.registry import build_text_encoder

# The per-image facts of a family that has neither sampler nor guidance.
UNGUIDED: dict[str, Any] = {
    "steps": None,
    "guidance": None,
    "sampler": None,
    "guidance_interval": None,
    "guidance_distilled": False,
}


@dataclass(frozen=True)
class BuildOptions:
    """What a caller asks of a generator being built; a family ignores what it has none of.

    ``folder``: the checkpoint folder (where extra shipped files live); ``compile``: run the
    per-step networks under ``torch.compile``; ``distilled``: sample with a guidance-distilled
    network where one ships beside the checkpoint.
    """

    folder: Path | None = None
    compile: bool = False
    distilled: bool = True


class Run(Protocol):
    """One generation run's checked settings, shared by all its batches."""

    facts: dict[str, Any]  # what each image records about how it was made (UNGUIDED's keys)

    def __call__(self, cond: Cond, seeds: Sequence[int]) -> torch.Tensor:
        """Images (B, C, *size) in [0, 1], sample i from ``seeds[i]`` alone; ``cond``:
        the prompts' encoding, (1, T, D) for one prompt or (B, T, D)."""


class Generator(Protocol):
    """Conditioning in, images and per-image facts out."""

    text_encoder: TextEncoder | None  # None: unconditional (the prompt sets only metadata)
    compiled: bool  # networks under torch.compile: their attention keeps its traced form

    def modules(self) -> list[nn.Module]:
        """Every network the family runs (moved to the device, eval mode while generating)."""

    def run(self, steps: int | None, guidance: float | None, device: torch.device) -> Run:
        """A run at ``steps`` / ``guidance`` (None: the card's defaults), checked."""


def module(modules: Mapping[str, nn.Module], name: str) -> nn.Module:
    if name not in modules:
        raise CheckpointMismatch(f"no {name!r} module among {sorted(modules)}")
    return modules[name]


def conditioning(card: Card, modules: Mapping[str, nn.Module], given: TextEncoder | None) -> TextEncoder:
    """The text encoder of a conditional family: ``given`` (one shared between pipelines),
    else the learned one shipped in the weights, else the frozen one the card names."""
    return given or modules.get("text_encoder") or build_text_encoder(card.section("text_encoder"))
