"""Paths to the real images the I/O tests read, and shared checks (imported by the tests).

Every fixture is a real file from an installed package or the shared sample folder; a
test whose source is absent is skipped with the package that provides it.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from radsynth.io import Image

SAMPLES = Path("/work/shared/data/dicom_samples")
SINGLE = SAMPLES / "single"
TRIO_SERIES = SAMPLES / "series_mr_trio_gre_field_mapping_magnitude"
ITK_DATA = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data")
CH2 = Path("/usr/share/mricron/templates/ch2.nii.gz")

PROVIDERS = {
    SAMPLES: "the shared DICOM samples (/work/shared/data/dicom_samples)",
    ITK_DATA: "Debian insighttoolkit5-examples",
    CH2.parent: "Debian mricron-data",
}


def require(path: Path) -> Path:
    """``path`` if it exists, else skip naming the package that ships it."""
    if not path.exists():
        source = next((v for k, v in PROVIDERS.items() if path.is_relative_to(k)), "its package")
        pytest.skip(f"{path} not present (from {source})")
    return path


def dciodvfy_errors(path: Path) -> list[str]:
    """The ``Error`` lines dicom3tools' validator prints for ``path`` (warnings ignored)."""
    tool = shutil.which("dciodvfy")
    if tool is None:
        pytest.skip("dciodvfy not installed (Debian dicom3tools)")
    run = subprocess.run([tool, str(path)], capture_output=True, text=True, check=False)
    return [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("Error")]


def assert_same_values(back: Image, original: Image, atol: float) -> None:
    """Same pixels (within ``atol`` in output units), colour flag and geometry."""
    assert back.rgb == original.rgb
    assert back.spatial_shape == original.spatial_shape
    assert back.same_geometry(original, atol=1e-4), (back.spacing, original.spacing, back.origin)
    np.testing.assert_allclose(
        back.array.astype(np.float64), original.array.astype(np.float64), atol=atol, rtol=0
    )
