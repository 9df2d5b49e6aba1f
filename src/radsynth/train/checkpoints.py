"""A run's folder: step checkpoints (weights + card + resume state) and the final model.

::

    <out>/checkpoints/step-00000500/   model.safetensors, card.json, train_state.*
    <out>/model/                       model.safetensors, card.json (what generation loads)
    <out>/log.jsonl                    metrics every ``log_every`` steps

Each folder is written under a temporary name and renamed into place, so an interrupted
save never leaves a half-written checkpoint; the oldest step folders beyond
``keep_checkpoints`` are removed only after the new one is complete.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from radsynth.errors import InvalidInput
from radsynth.models.checkpoint import has_train_state
from radsynth.train.config import TrainConfig
from radsynth.train.data import TrainingData

CHECKPOINTS = "checkpoints"
FINAL = "model"
LOG = "log.jsonl"
# Settings that may change between an interrupted run and its resumption.
RESUMABLE_CHANGES = {"steps", "out", "checkpoint_every", "keep_checkpoints", "log_every", "data.workers"}


def step_folder(out: Path, step: int) -> Path:
    return out / CHECKPOINTS / f"step-{step:08d}"


def step_folders(out: Path) -> list[Path]:
    """Complete step checkpoints, oldest first."""
    folder = out / CHECKPOINTS
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob("step-*") if p.name[5:].isdigit() and has_train_state(p)]
    return sorted(found, key=lambda p: int(p.name[5:]))


def latest_resumable(out: Path) -> Path:
    """The newest step checkpoint in ``out``; ``InvalidInput`` when there is none."""
    found = step_folders(out)
    if not found:
        raise InvalidInput("--resume: no checkpoint with training state in this run folder", out)
    return found[-1]


def prune(out: Path, keep: int) -> None:
    for old in step_folders(out)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def check_resumable(config: TrainConfig, saved: dict[str, Any], folder: Path) -> None:
    """Refuse to resume with settings that change what is trained, naming the first one."""
    now = _flat(config.to_dict())
    before = _flat(saved)
    for key in sorted(set(now) | set(before)):
        if key in RESUMABLE_CHANGES or key == "name":
            continue
        if now.get(key) != before.get(key):
            raise InvalidInput(
                f"--resume: {key} is {now.get(key)!r} but the checkpoint was trained with "
                f"{before.get(key)!r}",
                folder,
            )


def build_card(
    config: TrainConfig,
    data: TrainingData,
    task_fields: dict[str, Any],
    steps: int,
    wall_time_s: float,
    metrics: dict[str, float],
    world_size: int,
) -> dict[str, Any]:
    """The card: what the model is, how and on what it was trained.

    ``config`` holds each component's settings (what generation rebuilds the networks
    from) plus ``train``, the full recipe; ``task_info`` is the task's (``image`` size and
    spacing, ``vocabulary``, ``sampling`` defaults, ...).
    """
    return {
        "model_id": config.model_id,
        "task": config.task,
        "config": {**task_fields.get("config", {}), "train": config.to_dict()},
        "task_info": task_fields.get("task_info", {}),
        "data": {"manifest": data.manifest, "split": config.data.split, "sources": data.sources()},
        "steps": steps,
        "wall_time_s": round(wall_time_s, 2),
        "metrics": {k: round(v, 6) for k, v in metrics.items()},
        "training": {"world_size": world_size, "global_batch": config.batch_size, "amp": config.amp},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict) and key == "data":
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out
