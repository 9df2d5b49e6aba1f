"""What every benchmark's JSON carries so that a row can be traced and rerun (issue 24):
the command, the commit, the machine (CPU kind decides the precision ``auto`` picks), the
versions, and a hash of each model's weights."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from radsynth import __version__

REPO = Path(__file__).resolve().parents[3]


def git_commit() -> str | None:
    """HEAD of the checkout radsynth runs from (None outside a git checkout)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def machine() -> dict[str, Any]:
    """CPU model and count, threads, whether bf16 is native (AVX-512 BF16 / AMX: ``auto``
    picks bf16 there, fp32 elsewhere), load average, torch and Python versions."""
    import torch

    from radsynth.models.precision import cpu_has_fast_bf16

    cpu = platform.processor() or platform.machine()
    info = Path("/proc/cpuinfo")
    if info.is_file():
        names = [
            ln.split(":", 1)[1].strip() for ln in info.read_text().splitlines() if ln.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "native_bf16": cpu_has_fast_bf16(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def weights_hash(folder: str | Path) -> str:
    """First 16 hex digits of the SHA-256 of a checkpoint folder's weights file."""
    from radsynth.models.checkpoint import WEIGHTS

    return hashlib.sha256((Path(folder) / WEIGHTS).read_bytes()).hexdigest()[:16]


def run_record(models: Iterable[str | Path] = (), argv: list[str] | None = None) -> dict[str, Any]:
    """``{command, git_commit, radsynth_version, date, machine, models}`` for a benchmark's
    JSON; ``models`` are checkpoint folders, recorded with their weights' hash."""
    args = sys.argv if argv is None else [sys.argv[0], *argv]
    script = Path(args[0])
    with contextlib.suppress(ValueError):  # a script outside the repository keeps its path
        script = script.resolve().relative_to(REPO)
    return {
        "command": " ".join([str(script), *args[1:]]),
        "git_commit": git_commit(),
        "radsynth_version": __version__,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "models": {str(Path(f)): weights_hash(f) for f in models},
    }
