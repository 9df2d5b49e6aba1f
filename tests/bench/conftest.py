"""The benchmark scripts (``benchmarks/*.py``, not a package) imported by name for their tests."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def benchmark_module(name: str):
    """``benchmarks/<name>.py`` as a module (its sibling imports resolved)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCHMARKS))
