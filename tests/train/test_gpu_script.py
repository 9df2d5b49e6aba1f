"""scripts/gpu_cxr_256.sh, the one-run 256-px chest X-ray recipe for a lent GPU, run end to end
in its smoke mode (every stage for 2 steps of batch 2, on the CPU) on 8 real X-rays: a script that is
only ever run on a GPU for minutes must not find its first bug there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open

from tests.generate.conftest import build_cxr_manifest

pytestmark = pytest.mark.slow  # trains a 256-px VAE and LDM for 2 steps of batch 2 each (~30 s)

ROOT = Path(__file__).resolve().parents[2]


def test_the_gpu_recipe_runs_every_stage_and_ships_a_float16_ldm(tmp_path):
    corpus = tmp_path / "corpus"
    manifest = build_cxr_manifest(corpus)
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    for record in records:  # the recipes train on redistributable records only (NIH: CC0)
        record.setdefault("labels", {})["redistributable"] = True
    manifest.write_text("".join(json.dumps(r) + "\n" for r in records))
    env = {
        **os.environ,
        "SMOKE": "1",
        "CORPUS": str(corpus),
        "PY": sys.executable,
        "RADSYNTH": str(Path(sys.executable).parent / "radsynth"),
    }
    done = subprocess.run(
        ["bash", str(ROOT / "scripts/gpu_cxr_256.sh"), str(tmp_path / "out")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = tmp_path / "out"
    card = json.loads((out / "ldm/card.json").read_text())
    assert card["task"] == "ldm" and card["training"]["weights_storage"] == "float16"
    assert card["config"]["train"]["data"]["image_size"] == 256
    assert card["task_info"]["image"]["size"] in (256, [256, 256])
    with safe_open(str(out / "ldm/model.safetensors"), "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F16"}  # noqa: SIM118
    stages = [line.split("\t")[0] for line in (out / "timings.tsv").read_text().splitlines()[1:]]
    assert stages == ["vae", "ldm", "ship"]  # the corpus was given, not built
    assert not (out / "work").exists()  # only what is brought back stays
