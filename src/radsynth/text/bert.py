"""A BERT encoder (Devlin et al. 2019) in plain PyTorch, for frozen inference only: the
all-MiniLM-L6-v2 weights from its ``model.safetensors`` and its ``tokenizer.json`` through
the ``tokenizers`` library, without the transformers stack, whose import alone took ~1 s
of every command's start (issue 25). It computes what transformers' ``BertModel`` does
(``last_hidden_state``; the equivalence test holds it to transformers within float
rounding): post-norm layers, exact-erf GELU, absolute positions, token type 0.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F


class _Layer(nn.Module):
    def __init__(self, dim: int, heads: int, hidden: int, eps: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.ModuleDict({k: nn.Linear(dim, dim) for k in ("query", "key", "value")})
        self.attn_out, self.attn_norm = nn.Linear(dim, dim), nn.LayerNorm(dim, eps=eps)
        self.up, self.down = nn.Linear(dim, hidden), nn.Linear(hidden, dim)
        self.out_norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = h.shape
        q, k, v = (self.qkv[n](h).view(b, t, self.heads, d // self.heads).transpose(1, 2) for n in self.qkv)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, heads, T, d / heads)
        h = self.attn_norm(h + self.attn_out(a.transpose(1, 2).reshape(b, t, d)))
        return self.out_norm(h + self.down(F.gelu(self.up(h))))


class BertEncoder(nn.Module):
    """``forward(input_ids (B, T), attention_mask (B, T)) -> last hidden state (B, T, D)``."""

    def __init__(self, config: dict) -> None:
        super().__init__()
        dim, eps = config["hidden_size"], config["layer_norm_eps"]
        self.words = nn.Embedding(config["vocab_size"], dim)
        self.positions = nn.Embedding(config["max_position_embeddings"], dim)
        self.token_type = nn.Embedding(config["type_vocab_size"], dim)
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.layers = nn.ModuleList(
            _Layer(dim, config["num_attention_heads"], config["intermediate_size"], eps)
            for _ in range(config["num_hidden_layers"])
        )

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        t = input_ids.shape[1]
        h = self.words(input_ids) + self.token_type.weight[0] + self.positions.weight[:t]  # (B, T, D)
        h = self.norm(h)
        keep = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, T): padding is never attended to
        for layer in self.layers:
            h = layer(h, keep)
        return h

    @classmethod
    def from_folder(cls, folder: Path) -> BertEncoder:
        """The model of a transformers ``BertModel`` folder (``config.json`` + ``model.safetensors``)."""
        from safetensors.torch import load_file

        model = cls(json.loads((folder / "config.json").read_text(encoding="utf-8")))
        model.load_state_dict(_our_names(load_file(folder / "model.safetensors")))
        return model.eval().requires_grad_(False)


def _our_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers' ``BertModel`` keys -> ours (the pooler and position ids are not used)."""
    renames = {
        "embeddings.word_embeddings.": "words.",
        "embeddings.position_embeddings.": "positions.",
        "embeddings.token_type_embeddings.": "token_type.",
        "embeddings.LayerNorm.": "norm.",
        "encoder.layer.": "layers.",
        "attention.self.": "qkv.",
        "attention.output.dense.": "attn_out.",
        "attention.output.LayerNorm.": "attn_norm.",
        "intermediate.dense.": "up.",
        "output.dense.": "down.",
        "output.LayerNorm.": "out_norm.",
    }
    out = {}
    for key, value in state.items():
        if key.startswith("pooler.") or key.endswith("position_ids"):
            continue
        for old, new in renames.items():
            key = key.replace(old, new)
        out[key] = value
    return out


class BertTokenizer:
    """``tokenizer.json`` through the ``tokenizers`` library: ``[CLS] text [SEP]``, padded
    and truncated to ``max_length`` -> ``(input_ids, attention_mask)``, (B, T) int64 each."""

    def __init__(self, folder: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length)
        self.tokenizer.enable_padding(length=max_length, pad_id=0, pad_token="[PAD]")

    def __call__(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        encodings = self.tokenizer.encode_batch(texts)
        ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
        return ids, mask
