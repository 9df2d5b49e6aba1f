"""Two processes under torchrun (gloo on CPU) with the recipe unchanged: each takes half of
the global batch, only rank 0 writes, and every process ends with the same weights."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from radsynth.models.checkpoint import load_checkpoint
from radsynth.train import config_from_dict, train

from .conftest import TINY_TASKS, smoke_config, write_config

pytestmark = pytest.mark.slow  # torchrun starts two training processes


def _torchrun(config_path: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    radsynth = shutil.which("radsynth") or str(Path(sys.executable).parent / "radsynth")
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--standalone", "--no-python", radsynth, "train", str(config_path), "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    if done.returncode != 0 and "terminate called without an active exception" in done.stderr:
        # A worker's C++ abort seen in 2 of 3 whole-suite runs on 2026-12-06 and never alone
        # (8 of 8; README, Tests): unexplained, so the run is repeated once from scratch and
        # any other failure, or a second abort, still fails the test.
        out = Path(yaml.safe_load(config_path.read_text())["out"])
        shutil.rmtree(out, ignore_errors=True)
        done = subprocess.run(command, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_two_processes_match_one_process(tiny_manifest, tmp_path):
    recipe = smoke_config(tiny_manifest, tmp_path / "ddp", steps=8, log_every=4, checkpoint_every=4)
    done = _torchrun(write_config(tmp_path / "smoke.yaml", recipe), tmp_path)
    assert done.stdout.count("trained smoke-test") == 1  # rank 0 alone reports
    card = json.loads((tmp_path / "ddp" / "model" / "card.json").read_text())
    assert card["training"]["world_size"] == 2 and card["training"]["global_batch"] == 4
    assert card["metrics"]["ddp_max_weight_difference"] == 0.0  # ranks hold identical weights
    single = train(config_from_dict({**recipe, "out": str(tmp_path / "single")}))
    a, b = load_checkpoint(tmp_path / "ddp" / "model")[0], load_checkpoint(single)[0]
    for key in a["net"]:  # the same global batches: equal up to all-reduce rounding
        torch.testing.assert_close(a["net"][key], b["net"][key], rtol=1e-4, atol=1e-5)
    log_ddp = [json.loads(x)["loss"] for x in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    log_one = [json.loads(x)["loss"] for x in (tmp_path / "single" / "log.jsonl").read_text().splitlines()]
    assert log_ddp == pytest.approx(log_one, rel=1e-4)


def test_two_processes_train_a_two_optimizer_gan(tiny_manifest, tmp_path):
    recipe = smoke_config(tiny_manifest, tmp_path / "gan", steps=3, amp=True, **TINY_TASKS["gan"])
    _torchrun(write_config(tmp_path / "gan.yaml", recipe), tmp_path)
    card = json.loads((tmp_path / "gan" / "model" / "card.json").read_text())
    assert card["metrics"]["ddp_max_weight_difference"] == 0.0
    assert set(load_checkpoint(tmp_path / "gan" / "model")[0]) == {"generator", "text_encoder"}
