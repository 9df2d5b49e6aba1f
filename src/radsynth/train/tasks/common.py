"""Pieces the tasks share: option parsing, network configs filled from the data and the
text encoder, Adam, text conditioning, and the card's image/vocabulary fields."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from radsynth.errors import InvalidInput
from radsynth.text import LearnedEncoder, TextEncoder, build_text_encoder, vocabulary_from_captions
from radsynth.train.config import TrainConfig, from_dict
from radsynth.train.data import TrainingData


def parse_options(cls: type, config: TrainConfig) -> Any:
    """The task's options dataclass from ``config.options`` (unknown keys named)."""
    return from_dict(cls, config.options, "options.")


def network_config(cls: type, given: Mapping[str, Any], derived: Mapping[str, Any]) -> Any:
    """``cls.from_dict(given)`` with ``derived`` values filled in where ``given`` is silent;
    a given value that contradicts a derived one (a UNet's ``cross_attention_dim`` vs the
    text encoder's ``dim``) is refused, naming the key."""
    for key, value in derived.items():
        if key in given and _plain(given[key]) != _plain(value):
            raise InvalidInput(f"model.{key} is {given[key]!r} but must be {value!r} here")
    return cls.from_dict({**dict(derived), **dict(given)})


def adam(params: Any, lr: float, betas: tuple[float, float] = (0.9, 0.999)) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, betas=betas)


def image_fields(config: TrainConfig, data: TrainingData) -> dict[str, Any]:
    """The card's ``task_info`` basics: ``image`` (size in pixels, and spacing in mm, x then
    y, where the training records state one: a chest X-ray PNG does not, and a card that
    claimed 1 mm would put it in every DICOM) and ``vocabulary`` (what the captions said)."""
    size = [config.data.image_size, config.data.image_size]
    spacing = data.spacing()
    return {
        "image": {"size": size, **({"spacing": spacing} if spacing else {})},
        "vocabulary": vocabulary_from_captions(data.captions).to_dict(),
    }


class TextConditioning:
    """A frozen (MiniLM) or learned text encoder, used the same way by the GAN and the LDM.

    ``spec`` is a ``radsynth.text`` encoder config (``{"kind": "minilm"}`` or ``{"kind":
    "learned", "dim": ..}``); a learned encoder without a ``vocab`` takes its vocabulary
    from the training captions. A learned encoder is a module the task trains and ships
    (``module``); a frozen one is neither trained nor saved.
    """

    def __init__(self, spec: Mapping[str, Any], captions: list[str], device: torch.device) -> None:
        spec = dict(spec)
        if spec.get("kind") == "learned" and "vocab" not in spec:
            settings = {k: v for k, v in spec.items() if k != "kind"}
            self.encoder: TextEncoder = LearnedEncoder.from_captions(captions, **settings)
        else:
            self.encoder = build_text_encoder(spec)
        self.module: nn.Module | None = self.encoder if isinstance(self.encoder, nn.Module) else None
        if self.module is None:
            self.encoder.to(device)  # a frozen encoder moves itself (and drops its cache)
        self.device = device

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def config(self) -> dict[str, Any]:
        return self.encoder.config()

    def encode(self, texts: list[str], nets: Mapping[str, nn.Module]) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens (B, T, D), mask (B, T)) on the device; a learned encoder runs through
        ``nets["text_encoder"]`` so DDP synchronises its gradients."""
        if self.module is not None:
            return nets["text_encoder"](texts)
        tokens, mask = self.encoder.encode(texts)
        return tokens.to(self.device), mask.to(self.device)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple | list) else value
