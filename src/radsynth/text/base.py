"""The text-encoder interface: prompt strings -> token embeddings for cross-attention.

Every encoder follows :class:`TextEncoder`: ``encode(texts) -> (tokens (B, T, D), mask
(B, T) bool)`` with a fixed ``T = max_length`` and zero vectors at padded positions.
Fixed length lets the conditional and unconditional halves of a classifier-free-guidance
batch concatenate directly; zeroed padding matters because MONAI's cross-attention has no
key-padding mask: a zero key scores 0 and a zero value adds nothing, so padding acts as a
constant "null" token instead of leaking whatever the encoder computed there.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch

from radsynth.errors import InvalidInput


@runtime_checkable
class TextEncoder(Protocol):
    """What models, pipelines and training tasks need from a text encoder."""

    dim: int
    max_length: int

    @property
    def id(self) -> str:
        """Stable name for cards and logs (e.g. "minilm:sentence-transformers/all-MiniLM-L6-v2")."""
        ...

    def config(self) -> dict[str, Any]:
        """JSON-ready settings, with ``kind``, that ``build_text_encoder`` rebuilds it from."""
        ...

    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens (B, T, D) float32, mask (B, T) bool), padded positions zeroed."""
        ...


def check_texts(texts: list[str]) -> None:
    """Fail early on what is not a non-empty list of strings (a bare string would be
    iterated character by character)."""
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise InvalidInput("texts must be a list of strings (wrap a single prompt in a list)")
    if not texts:
        raise InvalidInput("texts is empty: nothing to encode")


def check_settings(kind: str, settings: dict[str, Any], known: set[str]) -> None:
    """Reject keys an encoder does not take, naming them (a card or YAML typo)."""
    unknown = sorted(set(settings) - known)
    if unknown:
        names = ", ".join(map(repr, unknown))
        raise InvalidInput(f"{kind} text encoder: unknown key(s) {names}; known: {', '.join(sorted(known))}")
