"""The typed card and the one loader: every shipped checkpoint reads, builds and loads
through them; malformed cards fail once, naming the file."""

from __future__ import annotations

import json

import pytest
import torch

from radsynth.errors import CheckpointMismatch, InvalidInput
from radsynth.models.card import Card
from radsynth.models.registry import (
    BUILDERS,
    DEFAULT_FAMILY,
    checkpoint_folder,
    load_pretrained,
    read_card,
    shipped,
    shipped_models,
)

SOURCE = {"source": "s", "licence": "CC0", "count": 3}
CARD = {
    "model_id": "m",
    "task": "vae",
    "config": {"vae": {"latent_channels": 2}},
    "task_info": {"image": {"size": [16, 16], "spacing": [0.7, 0.8]}},
    "data": {"manifest": "demo:64", "split": "train", "sources": [SOURCE]},
    "steps": 5,
    "description": "kept as written",
}


def test_a_card_reads_typed_and_writes_back_what_it_read():
    card = Card.from_dict(CARD)
    assert (card.task, card.model_id, card.steps) == ("vae", "m", 5)
    assert card.image_size == (16, 16) and card.spacing == (0.7, 0.8)
    assert card.data.sources[0].licence == "CC0" and card.extra == {"description": "kept as written"}
    assert card.to_dict() == CARD
    assert card.section("noise", {}) == {}
    with pytest.raises(CheckpointMismatch, match="no 'unet' section"):
        card.section("unet")


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"task": None}, "task None"),
        ({"config": []}, "config is not a mapping"),
        ({"config": {"vae": 3}}, "section 'vae'"),
        ({"steps": "many"}, "steps"),
        ({"data": {"sources": [{"source": "s"}]}}, "lacks a source or a licence"),
        ({"task_info": {"image": {"size": "64"}}}, "image.size"),
    ],
)
def test_a_malformed_card_is_refused_naming_the_file(change, problem, tmp_path):
    (tmp_path / "card.json").write_text(json.dumps({**CARD, **change}))
    with pytest.raises(CheckpointMismatch, match=problem) as err:
        read_card(tmp_path)
    assert str(tmp_path / "card.json") in str(err.value)


def test_every_shipped_checkpoint_loads_through_the_one_loader():
    models = shipped_models()
    assert {m.name for m in models} >= {DEFAULT_FAMILY, "cxr-128"}
    kinds = {m.kind for m in models if m.name == DEFAULT_FAMILY}
    assert {"ldm", "gan", "vae", "classifier", "encoder", "detector", "translate-sr"} <= kinds
    assert "classifier" in {m.kind for m in models if m.name == "cxr-128"}
    for model in models:
        pretrained = load_pretrained(model.folder)
        assert pretrained.card.task in BUILDERS and pretrained.card.model_id
        assert all(not m.training for m in pretrained.modules.values())
    assert shipped("classifier") == checkpoint_folder(DEFAULT_FAMILY, "classifier")


def test_the_loader_refuses_another_task_and_an_unknown_one(tmp_path):
    with pytest.raises(InvalidInput, match="not a classifier checkpoint"):
        load_pretrained(shipped("detector"), "classifier")
    from radsynth.models.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "odd", {"net": torch.nn.Linear(2, 2)}, {"model_id": "x", "task": "odd"})
    with pytest.raises(CheckpointMismatch, match="card task 'odd' is not a model radsynth builds"):
        load_pretrained(tmp_path / "odd")


def test_an_unknown_family_or_kind_names_what_is_shipped():
    with pytest.raises(InvalidInput, match="ships no 'flow' checkpoint"):
        checkpoint_folder(DEFAULT_FAMILY, "flow")
    with pytest.raises(InvalidInput, match=f"unknown model 'nope'.*{DEFAULT_FAMILY}"):
        checkpoint_folder("nope", "ldm")
