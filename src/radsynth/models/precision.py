"""Whether bfloat16 autocast pays on a device.

bf16 matrix work is about 4x faster than float32 on CPUs with AVX-512 BF16 or AMX, but
without those instructions PyTorch emulates it and a convolution step runs 20x *slower*
(measured here on an AVX2-only EPYC: a VAE training step took 20.5 s in bf16 against
0.86 s in float32). So "use bf16" is a request that only the hardware can grant.

Generation takes a precision by name: ``fp32``, ``bf16`` (network forwards under bf16
autocast, solver state in float32) or ``auto`` (bf16 where :func:`fast_bf16` says it
pays). bf16 rounding depends on the batch shape, so only fp32 keeps image i the same to
float32 rounding at any batch size; the resolved name goes into every output's facts.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from radsynth.errors import InvalidInput

PRECISIONS = ("auto", "fp32", "bf16")
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 dot products (Linux ``/proc/cpuinfo`` flags)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return cpuinfo_has_bf16(text)


def cpuinfo_has_bf16(cpuinfo: str) -> bool:
    """Whether the first ``flags`` line of a ``/proc/cpuinfo`` text names a native bf16
    instruction set (whole flags only: ``avx512bw`` is not ``avx512_bf16``)."""
    flags = next((line for line in cpuinfo.splitlines() if line.startswith("flags")), "").split()
    return any(flag in flags for flag in _CPU_BF16_FLAGS)


def fast_bf16(device: torch.device | str) -> bool:
    """Whether bf16 autocast speeds up network work on ``device``."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return cpu_has_fast_bf16()
    return False


def resolve_precision(precision: str, device: torch.device | str) -> str:
    """``fp32`` or ``bf16``: what ``precision`` (one of ``PRECISIONS``) means on ``device``."""
    if precision not in PRECISIONS:
        raise InvalidInput(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision == "auto":
        return "bf16" if fast_bf16(device) else "fp32"
    return precision
