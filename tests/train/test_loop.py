"""The training loop on the smoke task: learning, checkpoints, cards, resume, data order."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from radsynth.errors import InvalidInput
from radsynth.models.checkpoint import load_checkpoint, load_train_state, restore
from radsynth.train import config_from_dict, train
from radsynth.train.checkpoints import step_folders
from radsynth.train.sampler import StepBatchSampler
from radsynth.train.tasks.smoke import SmokeConfig, SmokeNet

from .conftest import smoke_config


def _weights(folder):
    return load_checkpoint(folder)[0]


def _same(a, b) -> bool:
    return all(torch.equal(a[m][k], b[m][k]) for m in a for k in a[m])


def test_loss_goes_down_and_checkpoints_are_complete(tiny_manifest, tmp_path):
    config = config_from_dict(smoke_config(tiny_manifest, tmp_path / "run", steps=36, log_every=6))
    folder = train(config)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [6, 12, 18, 24, 30, 36]
    assert log[-1]["loss"] < 0.6 * log[0]["loss"]
    assert all(r["images_per_s"] > 0 for r in log)
    card = restore(folder, {"net": SmokeNet(SmokeConfig(channels=8))})
    assert card["task"] == "smoke" and card["model_id"] == "smoke-test" and card["steps"] == 36
    assert card["config"]["train"]["batch_size"] == 4 and card["config"]["smoke"] == {"channels": 8}
    assert card["data"]["sources"] == [
        {"source": "debian:insighttoolkit5-examples", "licence": "Apache-2.0", "count": 8}
    ]
    assert card["task_info"]["image"] == {"size": [16, 16], "spacing": [1.0, 1.0]}
    assert card["wall_time_s"] > 0 and card["metrics"]["loss"] == pytest.approx(log[-1]["loss"])
    assert sorted(p.name for p in folder.iterdir()) == ["card.json", "model.safetensors"]
    steps = step_folders(tmp_path / "run")
    assert [p.name for p in steps] == ["step-00000030", "step-00000036"]  # keep_checkpoints = 2
    assert _same(_weights(steps[-1]), _weights(folder))
    _, meta = load_train_state(steps[-1])
    assert meta["step"] == 36 and "model" in meta["optimizers"]


@pytest.mark.parametrize("amp", [False, True])
def test_resume_matches_an_uninterrupted_run(tiny_manifest, tmp_path, amp):
    whole = tmp_path / "whole"
    train(config_from_dict(smoke_config(tiny_manifest, whole, steps=12, amp=amp)))
    parts = tmp_path / "parts"
    train(config_from_dict(smoke_config(tiny_manifest, parts, steps=5, amp=amp)))  # "interrupted" at 5
    train(config_from_dict(smoke_config(tiny_manifest, parts, steps=12, amp=amp)), resume=True)
    assert _same(_weights(whole / "model"), _weights(parts / "model"))
    raw_whole, _ = load_train_state(step_folders(whole)[-1])
    raw_parts, _ = load_train_state(step_folders(parts)[-1])
    assert all(torch.equal(raw_whole[k], raw_parts[k]) for k in raw_whole)  # raw weights + Adam state
    log = [json.loads(line)["step"] for line in (parts / "log.jsonl").read_text().splitlines()]
    assert log == [3, 5, 6, 9, 12]


def test_resume_refuses_a_changed_recipe_or_an_empty_folder(tiny_manifest, tmp_path):
    train(config_from_dict(smoke_config(tiny_manifest, tmp_path / "r", steps=3)))
    with pytest.raises(InvalidInput, match="lr is 0.001 but the checkpoint was trained with 0.003"):
        train(config_from_dict(smoke_config(tiny_manifest, tmp_path / "r", steps=6, lr=1e-3)), resume=True)
    with pytest.raises(InvalidInput, match="no checkpoint with training state"):
        train(config_from_dict(smoke_config(tiny_manifest, tmp_path / "new", steps=6)), resume=True)


def test_augmentation_and_warmup_run(tiny_manifest, tmp_path):
    config = smoke_config(tiny_manifest, tmp_path / "r", steps=4, warmup_steps=10)
    config["data"] = {**config["data"], "augment": True}
    train(config_from_dict(config))
    log = [json.loads(line) for line in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert log[0]["lr"] == pytest.approx(3.0e-3 * 3 / 10)


def test_process_batches_together_are_the_single_process_batch():
    single = iter(StepBatchSampler(12, 4, 1, 0, seed=5))
    ranks = [iter(StepBatchSampler(12, 2, 2, r, seed=5)) for r in range(2)]
    for _ in range(7):  # across epoch boundaries
        assert sorted(next(single)) == sorted(next(ranks[0]) + next(ranks[1]))
    resumed = iter(StepBatchSampler(12, 4, 1, 0, seed=5, start_step=4))
    fresh = iter(StepBatchSampler(12, 4, 1, 0, seed=5))
    for _ in range(4):
        next(fresh)
    assert [next(resumed) for _ in range(5)] == [next(fresh) for _ in range(5)]


def test_resuming_a_checkpoint_with_steps_lowered_to_it_writes_the_final_model(tiny_manifest, tmp_path):
    run = tmp_path / "run"
    train(config_from_dict(smoke_config(tiny_manifest, run, steps=6, checkpoint_every=3)))
    shutil.rmtree(run / "model")  # as if stopped right after the step-6 checkpoint
    folder = train(
        config_from_dict(smoke_config(tiny_manifest, run, steps=6, checkpoint_every=3)), resume=True
    )
    assert _same(_weights(folder), _weights(step_folders(run)[-1]))
    assert load_checkpoint(folder)[1]["steps"] == 6
