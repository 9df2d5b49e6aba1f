"""bf16 is used only where the hardware runs it natively."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from radsynth.models.precision import cpu_has_fast_bf16, cpuinfo_has_bf16, fast_bf16

# First lines of real /proc/cpuinfo flags: an AVX2-only EPYC, an AVX-512 Skylake without
# bf16, a Zen 4 with AVX-512 BF16, a Sapphire Rapids with AMX.
EPYC_AVX2 = "flags\t\t: fpu sse sse2 avx avx2 fma bmi2 sha_ni clzero"
SKYLAKE = "flags\t\t: fpu sse2 avx avx2 avx512f avx512dq avx512cd avx512bw avx512vl"
ZEN4 = "flags\t\t: fpu avx2 avx512f avx512bw avx512_bf16 avx512_vnni"
SAPPHIRE = "flags\t\t: fpu avx2 avx512f avx512bw amx_bf16 amx_tile amx_int8"


@pytest.mark.parametrize(
    ("cpuinfo", "native"),
    [
        (EPYC_AVX2, False),
        (SKYLAKE, False),
        (ZEN4, True),
        (SAPPHIRE, True),
        (f"processor\t: 0\nmodel name\t: test\n{ZEN4}\nbugs\t\t: none", True),
        ("processor\t: 0\nbugs\t\t: avx512_bf16", False),  # not a flags line
        ("", False),
    ],
)
def test_bf16_is_native_only_where_the_cpu_flags_name_it(cpuinfo, native):
    assert cpuinfo_has_bf16(cpuinfo) is native


def test_the_cpu_answer_is_the_machines_own_flags():
    assert fast_bf16("cpu") == cpu_has_fast_bf16() == cpuinfo_has_bf16(Path("/proc/cpuinfo").read_text())


def test_cuda_bf16_needs_a_gpu():
    assert fast_bf16(torch.device("cuda")) == (torch.cuda.is_available() and torch.cuda.is_bf16_supported())


def test_a_precision_is_resolved_by_name_and_unknown_names_are_refused():
    from radsynth.errors import InvalidInput
    from radsynth.models.precision import resolve_precision

    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("auto", "cpu") == ("bf16" if cpu_has_fast_bf16() else "fp32")
    with pytest.raises(InvalidInput, match="unknown precision 'half'"):
        resolve_precision("half", "cpu")
