"""Checkpoints: safetensors + card.json, atomic, tied weights, one-line errors."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from radsynth.errors import CheckpointMismatch, InvalidInput
from radsynth.models.checkpoint import (
    load_card,
    load_checkpoint,
    load_into,
    load_train_state,
    restore,
    save_checkpoint,
)

CARD = {"model_id": "m", "task": "smoke", "config": {}, "steps": 1}


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(5, 3)
        self.head = nn.Linear(3, 5, bias=False)
        self.head.weight = self.embed.weight  # tied, as in a language model head
        self.norm = nn.BatchNorm1d(3)


def _one_line(err: pytest.ExceptionInfo) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


def test_round_trip_with_tied_weights_and_buffers(tmp_path):
    torch.manual_seed(0)
    model, other = Tied(), nn.Linear(2, 2)
    folder = save_checkpoint(tmp_path / "ckpt", {"model": model, "other": other}, CARD)
    state, card = load_checkpoint(folder)
    assert card["model_id"] == "m" and card["radsynth_version"] and card["created"]
    assert set(state) == {"model", "other"}
    assert torch.equal(state["model"]["head.weight"], model.embed.weight)
    fresh = Tied()
    load_into({"model": fresh}, {"model": state["model"]})
    assert torch.equal(fresh.head.weight, model.head.weight)
    assert fresh.head.weight is fresh.embed.weight  # still tied after loading
    assert torch.equal(fresh.norm.running_var, model.norm.running_var)
    assert load_card(folder) == card
    # A plain state dict is accepted as a module's value too.
    save_checkpoint(tmp_path / "dict", {"other": other.state_dict()}, CARD)
    assert restore(tmp_path / "dict", {"other": nn.Linear(2, 2)})["task"] == "smoke"


def test_train_state_travels_beside_the_weights(tmp_path):
    folder = save_checkpoint(
        tmp_path / "c", {"m": nn.Linear(2, 2)}, CARD, train_state=({"optim.x": torch.ones(3)}, {"step": 7})
    )
    tensors, meta = load_train_state(folder)
    assert meta == {"step": 7} and torch.equal(tensors["optim.x"], torch.ones(3))
    assert set(load_checkpoint(folder)[0]) == {"m"}  # optimizer state is not in the shipped weights


def test_a_failed_save_leaves_the_previous_checkpoint(tmp_path):
    folder = save_checkpoint(tmp_path / "c", {"m": nn.Linear(2, 2)}, CARD)
    before = (folder / "model.safetensors").read_bytes()
    with pytest.raises(InvalidInput):
        save_checkpoint(folder, {"m": nn.Linear(2, 2)}, {**CARD, "metrics": {"x": object()}})
    with pytest.raises(InvalidInput, match="JSON"):
        save_checkpoint(folder, {"m": nn.Linear(2, 2)}, {**CARD, "bad": {1, 2}})
    assert (folder / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]  # no temporary leftovers


def test_mismatch_names_folder_key_and_shape(tmp_path):
    folder = save_checkpoint(tmp_path / "c", {"m": nn.Linear(2, 3)}, CARD)
    with pytest.raises(CheckpointMismatch) as err:
        restore(folder, {"m": nn.Linear(2, 4)})
    assert str(folder) in _one_line(err) and "m.weight" in str(err.value) and "(3, 2)" in str(err.value)
    with pytest.raises(CheckpointMismatch, match="module 'other' is missing"):
        restore(folder, {"m": nn.Linear(2, 3), "other": nn.Linear(1, 1)})
    with pytest.raises(CheckpointMismatch, match="'bias'"):
        restore(folder, {"m": nn.Linear(2, 3, bias=False)})
    restore(folder, {"m": nn.Linear(2, 3), "other": nn.Linear(1, 1)}, strict=False)


def test_corrupt_or_missing_files_fail_in_one_line(tmp_path):
    folder = save_checkpoint(tmp_path / "c", {"m": nn.Linear(2, 2)}, CARD)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:40])
    with pytest.raises(CheckpointMismatch) as err:
        load_checkpoint(folder)
    assert "model.safetensors is unreadable" in _one_line(err)
    (folder / "card.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CheckpointMismatch, match="card.json is not valid JSON"):
        load_checkpoint(folder)
    with pytest.raises(InvalidInput, match="no checkpoint folder"):
        load_checkpoint(tmp_path / "absent")
    (folder / "card.json").unlink()
    with pytest.raises(InvalidInput, match="no card.json"):
        load_card(folder)


def test_bad_module_names_and_cards_are_refused(tmp_path):
    with pytest.raises(InvalidInput, match="hold no"):
        save_checkpoint(tmp_path / "c", {"a.b": nn.Linear(1, 1)}, CARD)
    with pytest.raises(InvalidInput, match="'model_id'"):
        save_checkpoint(tmp_path / "c", {"a": nn.Linear(1, 1)}, {"task": "x"})
    assert not (tmp_path / "c").exists()
    json.dumps(CARD)


def test_a_crash_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    import safetensors.torch

    folder = save_checkpoint(tmp_path / "c", {"m": nn.Linear(2, 2)}, CARD)
    before = (folder / "model.safetensors").read_bytes()

    def crash(tensors, filename, metadata=None):
        with open(filename, "wb") as handle:
            handle.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", crash)
    with pytest.raises(OSError):
        save_checkpoint(folder, {"m": nn.Linear(2, 2)}, CARD)
    assert (folder / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]
