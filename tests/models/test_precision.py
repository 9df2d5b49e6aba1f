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


def test_a_precision_is_resolved_by_name_and_unknown_names_are_refused():
    import pytest

    from radsynth.errors import InvalidInput
    from radsynth.models.precision import resolve_precision

    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("auto", "cpu") == ("bf16" if cpu_has_fast_bf16() else "fp32")
    with pytest.raises(InvalidInput, match="unknown precision 'half'"):
        resolve_precision("half", "cpu")
