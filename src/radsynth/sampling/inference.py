"""Inference-only settings that make the same network faster without changing its function.

**Fused attention.** MONAI's attention blocks compute ``softmax(Q K^T / sqrt(d)) V`` with
two einsums and an explicit attention matrix unless their ``use_flash_attention`` flag is
set, which routes the same product through ``torch.nn.functional.scaled_dot_product_attention``
(a fused kernel on CPU, FlashAttention on GPU: Dao et al. 2022). The math is identical up
to float rounding, and the flag carries no weights, so a checkpoint trained either way
samples either way. A pipeline built with ``fast_attention=True`` turns it on only while
it generates and restores the modules afterwards, so a module shared with training is
left as it was. It is opt-in because other rounding means other pixels in the last bits:
an output is then reproducible only under the same setting.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from torch import nn

FLAG = "use_flash_attention"


def attention_blocks(modules: Iterable[nn.Module]) -> list[nn.Module]:
    """Every submodule of ``modules`` that carries MONAI's fused-attention flag."""
    return [sub for m in modules for sub in m.modules() if isinstance(getattr(sub, FLAG, None), bool)]


@contextlib.contextmanager
def fused_attention(modules: Iterable[nn.Module]) -> Iterator[None]:
    """Route every MONAI attention block of ``modules`` through fused SDPA for the block."""
    blocks = attention_blocks(modules)
    before = [getattr(b, FLAG) for b in blocks]
    for block in blocks:
        setattr(block, FLAG, True)
    try:
        yield
    finally:
        for block, flag in zip(blocks, before, strict=True):
            setattr(block, FLAG, flag)
