"""Fixtures for the I/O tests; paths and helpers live in ``io_helpers``."""

from __future__ import annotations

from pathlib import Path

import pytest

from .io_helpers import TRIO_SERIES, require


@pytest.fixture
def trio_files() -> list[Path]:
    """The 36 slices of the Siemens Trio magnitude series, sorted by name."""
    return sorted(require(TRIO_SERIES).glob("*.dcm"))
