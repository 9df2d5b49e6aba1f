"""The explicit registry of text encoders: a card's ``{"kind": ...}`` -> an encoder."""

from __future__ import annotations

from typing import Any

from radsynth.errors import InvalidInput
from radsynth.text.base import TextEncoder
from radsynth.text.learned import LearnedEncoder
from radsynth.text.minilm import MiniLMEncoder

ENCODERS: dict[str, Any] = {"minilm": MiniLMEncoder, "learned": LearnedEncoder}


def build_text_encoder(config: dict[str, Any]) -> TextEncoder:
    """Rebuild an encoder from its ``config()`` (e.g. read from a card).

    A learned encoder comes back with fresh weights: load its state dict afterwards.
    """
    kind = config.get("kind") if isinstance(config, dict) else None
    if kind not in ENCODERS:
        raise InvalidInput(f"text encoder kind {kind!r} is not one of {sorted(ENCODERS)}")
    return ENCODERS[kind].from_config({k: v for k, v in config.items() if k != "kind"})
