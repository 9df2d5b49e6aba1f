"""Measuring on a shared machine: interleaved repetitions, medians, peak memory, load,
matrix-multiply peaks and model FLOPs.

Timings on a machine other jobs share drift with their load, so methods are timed
interleaved (A B C A B C ...) and summarised by the median: a burst of load then hits
every method alike instead of one. The load average is recorded with the results.
"""

from __future__ import annotations

import contextlib
import os
import resource
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode


@dataclass
class Timed:
    """One method's repetitions: seconds each, peak memory (MiB) and what each returned."""

    seconds: list[float] = field(default_factory=list)
    peak_mib: float = 0.0
    outputs: list[Any] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak: CUDA's allocator peak, or this process's resident high-water mark
    (Linux resets ``VmHWM`` when 5 is written to ``/proc/self/clear_refs``)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    with contextlib.suppress(OSError):  # not Linux: the peak then covers the process's life
        Path("/proc/self/clear_refs").write_text("5")


def peak_memory_mib(device: torch.device) -> float:
    """CUDA: peak tensor memory allocated. CPU: peak resident memory of the process (model
    weights and allocator caches included, so it bounds what the method needs from above)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def interleaved(
    methods: Mapping[str, Callable[[int], Any]], repeats: int, device: torch.device
) -> dict[str, Timed]:
    """Run ``methods[name](rep)`` for rep in 0..repeats-1, interleaving the methods."""
    timed = {name: Timed() for name in methods}
    for rep in range(repeats):
        for name, method in methods.items():
            synchronize(device)
            reset_peak_memory(device)
            start = time.perf_counter()
            out = method(rep)
            synchronize(device)
            timed[name].seconds.append(time.perf_counter() - start)
            timed[name].peak_mib = max(timed[name].peak_mib, peak_memory_mib(device))
            timed[name].outputs.append(out)
    return timed


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (empty where the OS has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def matmul_peak_gflops(dtype: torch.dtype, device: torch.device, n: int = 2048, repeats: int = 5) -> float:
    """Measured square-matmul throughput (GFLOP/s, 2 n^3 per product), median of ``repeats``.

    Emulated dtypes (bf16 on a CPU without AVX-512 BF16 / AMX) are orders of magnitude
    slower, so they get a smaller matrix: the rate, not the size, is what is reported.
    """
    if dtype != torch.float32 and device.type == "cpu":
        from radsynth.models.precision import cpu_has_fast_bf16

        n = n if cpu_has_fast_bf16() else 256
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b  # warm-up
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 2 * n**3 / statistics.median(times) / 1e9


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of one call (matmuls and convolutions, as ``torch.utils.flop_counter`` counts)."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())
