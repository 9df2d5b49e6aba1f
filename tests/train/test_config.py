"""Recipes: typed, strict, one-line errors that name the key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from radsynth.errors import InvalidInput
from radsynth.train.config import TrainConfig, config_from_dict, load_config

from .conftest import smoke_config, write_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_yaml_round_trip_and_types(tmp_path):
    path = write_config(tmp_path / "my-run.yaml", {**smoke_config(Path("m.jsonl"), tmp_path), "lr": "1e-4"})
    path.write_text(path.read_text().replace("name: smoke-test\n", ""), encoding="utf-8")
    config = load_config(path)
    assert isinstance(config, TrainConfig) and config.lr == 1e-4  # YAML reads 1e-4 as a string
    assert config.model_id == "my-run" and config.data.image_size == 16
    assert config_from_dict(config.to_dict()) == config
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.steps = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stepz": 3}, "unknown key(s) stepz"),
        ({"data": {"manifest": "m", "imagesize": 3}}, "data.imagesize"),
        ({"task": "unet"}, "task 'unet' is not one of"),
        ({"steps": "ten"}, "steps must be an integer"),
        ({"amp": "yes"}, "amp must be true or false"),
        ({"ema_decay": 1.0}, "ema_decay must be in [0, 1)"),
        ({"data": {"split": "train"}}, "missing key(s) data.manifest"),
    ],
)
def test_bad_recipes_name_the_key(tmp_path, change, message):
    with pytest.raises(InvalidInput) as err:
        config_from_dict({**smoke_config(Path("m.jsonl"), tmp_path), **change})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_global_batch_must_split_evenly(tmp_path):
    config = config_from_dict(smoke_config(Path("m.jsonl"), tmp_path, batch_size=6))
    assert config.per_process_batch(2) == 3
    with pytest.raises(InvalidInput, match="not divisible by the 4 processes"):
        config.per_process_batch(4)


@pytest.mark.parametrize("name", ["vae-demo-64", "gan-demo-64", "ldm-demo-64"])
def test_shipped_recipes_parse(name):
    config = load_config(CONFIGS / f"{name}.yaml")
    assert config.task == name.split("-")[0] and config.data.manifest == "demo:64"
