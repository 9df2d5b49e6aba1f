"""``radsynth train``: overrides, and one-line errors with a non-zero exit code."""

from __future__ import annotations

import shutil

from radsynth.cli import main
from radsynth.train.checkpoints import step_folders

from .conftest import smoke_config, write_config


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err, err
    return err


def test_train_with_overrides(tiny_manifest, tmp_path, capsys):
    config = write_config(tmp_path / "r.yaml", smoke_config(tiny_manifest, tmp_path / "ignored"))
    assert main(["train", str(config), "--steps", "2", "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert "trained smoke-test: 2 steps" in capsys.readouterr().out
    assert (tmp_path / "out" / "model" / "card.json").is_file() and not (tmp_path / "ignored").exists()


def test_bad_recipe_key(tiny_manifest, tmp_path, capsys):
    config = write_config(tmp_path / "r.yaml", {**smoke_config(tiny_manifest, tmp_path), "learning_rate": 1})
    assert main(["train", str(config)]) == 1
    line = _error_line(capsys)
    assert "r.yaml" in line and "unknown key(s) learning_rate" in line


def test_missing_recipe_and_bad_device(tiny_manifest, tmp_path, capsys):
    assert main(["train", str(tmp_path / "absent.yaml")]) == 1
    assert "config file not found" in _error_line(capsys)
    config = write_config(tmp_path / "r.yaml", smoke_config(tiny_manifest, tmp_path / "o"))
    assert main(["train", str(config), "--device", "tpu"]) == 1
    assert "--device must be one of cpu, cuda" in _error_line(capsys)


def test_corrupt_checkpoint_on_resume(tiny_manifest, tmp_path, capsys):
    config = write_config(tmp_path / "r.yaml", smoke_config(tiny_manifest, tmp_path / "o", steps=2))
    assert main(["train", str(config), "--no-progress"]) == 0
    weights = step_folders(tmp_path / "o")[-1] / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    capsys.readouterr()
    assert main(["train", str(config), "--resume", "--steps", "4", "--no-progress"]) == 1
    assert "model.safetensors is unreadable" in _error_line(capsys)


def test_mismatched_checkpoint_on_resume(tiny_manifest, tmp_path, capsys):
    small = write_config(
        tmp_path / "s.yaml", smoke_config(tiny_manifest, tmp_path / "s", steps=1, model={"channels": 4})
    )
    config = write_config(tmp_path / "r.yaml", smoke_config(tiny_manifest, tmp_path / "o", steps=1))
    assert main(["train", str(small), "--no-progress"]) == 0
    assert main(["train", str(config), "--no-progress"]) == 0
    target = step_folders(tmp_path / "o")[-1]
    shutil.copy(step_folders(tmp_path / "s")[-1] / "model.safetensors", target / "model.safetensors")
    capsys.readouterr()
    assert main(["train", str(config), "--resume", "--steps", "3", "--no-progress"]) == 1
    line = _error_line(capsys)
    assert str(target) in line and "net.net.0.weight has shape (4, 1, 4, 4)" in line


def test_resume_without_checkpoint(tiny_manifest, tmp_path, capsys):
    config = write_config(tmp_path / "r.yaml", smoke_config(tiny_manifest, tmp_path / "o"))
    assert main(["train", str(config), "--resume"]) == 1
    assert "no checkpoint with training state" in _error_line(capsys)
