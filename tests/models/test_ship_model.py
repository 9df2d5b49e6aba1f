"""scripts/ship_model.py: a trained checkpoint copied into a shipped family, float16 storage."""

import json
import subprocess
import sys
from pathlib import Path

import torch

from radsynth.models.checkpoint import WEIGHTS
from radsynth.models.registry import load_pretrained, shipped

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ship_model.py"


def test_float16_storage_halves_the_file_and_loads_into_float32_networks(tmp_path):
    source = shipped("translate-sr")
    dest = tmp_path / "family" / "translate-sr"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(source), str(dest), "--float16"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (dest / WEIGHTS).stat().st_size < 0.55 * (source / WEIGHTS).stat().st_size
    assert json.loads((dest / "card.json").read_text())["training"]["weights_storage"] == "float16"
    eager = load_pretrained(source).modules["translator"]
    half = load_pretrained(dest).modules["translator"]
    assert all(p.dtype == torch.float32 for p in half.parameters())
    image = torch.rand(1, 1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        assert (eager(image) - half(image)).abs().max() < 1e-2
