"""A small trainable text encoder for users who want no pretrained model.

Word-level vocabulary built from the (PHI-scrubbed) training captions, token + position
embeddings, a 2-layer pre-norm transformer encoder (Vaswani et al. 2017; pre-norm as in
Xiong et al. 2020, which trains without warm-up at this size), D = 256 by default. It is an
``nn.Module``: its weights go into the checkpoint with the UNet/GAN, and its vocabulary
into the card through :meth:`LearnedEncoder.config`.

Digits are single tokens ("23" -> "2", "3"), so sizes in mm never fall out of vocabulary
and nearby sizes share tokens.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from radsynth.errors import InvalidInput
from radsynth.text.base import check_settings, check_texts
from radsynth.text.phi import scrub_phi

PAD, UNK, CLS = "[PAD]", "[UNK]", "[CLS]"
SPECIALS = (PAD, UNK, CLS)
_TOKEN = re.compile(r"\d|[a-z][a-z0-9]*|[^\sa-z0-9]")


def tokenize(text: str) -> list[str]:
    """Lower-case words, single digits and single punctuation marks.

    "axial T1-weighted brain MR, 23 mm" -> axial, t1, -, weighted, brain, mr, ",", 2, 3, mm.
    """
    return _TOKEN.findall(text.lower())


def build_vocab(captions: Iterable[str], min_count: int = 2) -> tuple[str, ...]:
    """Special tokens, then the caption tokens seen at least ``min_count`` times, sorted.

    Captions are scrubbed of identifiers first and rare tokens are dropped, because the
    vocabulary is written into the model card: a name seen once must not be published.
    """
    counts = Counter(tok for caption in captions for tok in tokenize(scrub_phi(caption)))
    words = sorted(w for w, c in counts.items() if c >= min_count and w not in SPECIALS)
    return (*SPECIALS, *words)


class LearnedEncoder(nn.Module):
    """``encode(texts) -> (tokens (B, T, dim), mask (B, T))``; position 0 is always [CLS],
    so the empty prompt "" (the unconditional input of classifier-free guidance) is a
    learned null embedding rather than all padding."""

    kind = "learned"

    def __init__(
        self,
        vocab: tuple[str, ...] | list[str],
        dim: int = 256,
        layers: int = 2,
        heads: int = 4,
        max_length: int = 48,
    ) -> None:
        super().__init__()
        vocab = tuple(vocab)
        if vocab[: len(SPECIALS)] != SPECIALS or len(set(vocab)) != len(vocab):
            raise InvalidInput(f"vocab must start with {SPECIALS} and hold no duplicates (use build_vocab)")
        if dim % heads:
            raise InvalidInput(f"dim={dim} must be divisible by heads={heads}")
        if max_length < 2:
            raise InvalidInput(f"max_length must be >= 2, got {max_length}")
        self.vocab = vocab
        self.index = {w: i for i, w in enumerate(vocab)}
        self.dim, self.layers, self.heads, self.max_length = dim, layers, heads, max_length
        self.token_embedding = nn.Embedding(len(vocab), dim, padding_idx=0)
        self.position_embedding = nn.Parameter(torch.randn(max_length, dim) * 0.02)
        block = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=2 * dim, dropout=0.0, batch_first=True, norm_first=True
        )
        self.transformer = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    @classmethod
    def from_captions(cls, captions: Iterable[str], min_count: int = 2, **kwargs: Any) -> LearnedEncoder:
        """A fresh encoder whose vocabulary comes from ``captions`` (see :func:`build_vocab`)."""
        return cls(build_vocab(captions, min_count), **kwargs)

    @classmethod
    def from_config(cls, settings: dict[str, Any]) -> LearnedEncoder:
        check_settings(cls.kind, settings, {"vocab", "dim", "layers", "heads", "max_length"})
        return cls(**settings)

    @property
    def id(self) -> str:
        return f"{self.kind}:v{len(self.vocab)}-d{self.dim}-l{self.layers}"

    def config(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "vocab": list(self.vocab),
            "dim": self.dim,
            "layers": self.layers,
            "heads": self.heads,
            "max_length": self.max_length,
        }

    def token_ids(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids (B, T) long, mask (B, T) bool): [CLS] + tokens, truncated and padded to T."""
        check_texts(texts)
        unk = self.index[UNK]
        rows = [[self.index[CLS]] + [self.index.get(w, unk) for w in tokenize(t)] for t in texts]
        ids = torch.zeros(len(texts), self.max_length, dtype=torch.long)
        for i, row in enumerate(rows):
            row = row[: self.max_length]
            ids[i, : len(row)] = torch.tensor(row)
        return ids, ids != 0

    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.token_embedding.weight.device
        ids, mask = (x.to(device) for x in self.token_ids(texts))
        h = self.token_embedding(ids) + self.position_embedding  # (B, T, dim)
        h = self.norm(self.transformer(h, src_key_padding_mask=~mask))
        return h * mask.unsqueeze(-1), mask

    def forward(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode(texts)
