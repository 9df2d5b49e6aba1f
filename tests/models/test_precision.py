"""bf16 is used only where the hardware runs it natively."""

from __future__ import annotations

from pathlib import Path

import torch

from radsynth.models.precision import cpu_has_fast_bf16, fast_bf16


def test_cpu_bf16_follows_the_cpuinfo_flags():
    text = Path("/proc/cpuinfo").read_text()
    flags = next(line for line in text.splitlines() if line.startswith("flags")).split()
    assert cpu_has_fast_bf16() == ("avx512_bf16" in flags or "amx_bf16" in flags)
    assert fast_bf16("cpu") == cpu_has_fast_bf16()


def test_cuda_bf16_needs_a_gpu():
    assert fast_bf16(torch.device("cuda")) == (torch.cuda.is_available() and torch.cuda.is_bf16_supported())
