"""The attribute classifier task: labels from the manifest's facts, unknown ones ignored,
and a checkpoint the evaluation's reader loads."""

from __future__ import annotations

import dataclasses

import torch

from radsynth.data.manifest import Record, load_manifest, read_unit_image, write_manifest
from radsynth.evaluate import DomainReader
from radsynth.train import config_from_dict, train
from radsynth.train.data import select_records
from radsynth.train.tasks.classifier import ClassifierTask, record_attribute

from .conftest import smoke_config


def _record(**fields):
    base = {
        "path": "x.png",
        "text": "",
        "modality": "CT",
        "subject": "s",
        "split": "train",
        "source": "",
        "licence": "",
    }
    return Record(**{**base, **fields})


def test_labels_come_from_the_records_facts_and_unknown_stays_unknown():
    assert record_attribute(_record(labels={"finding": "tumour"}), "finding") == "present"
    assert record_attribute(_record(labels={"finding": "none"}), "finding") == "absent"
    assert record_attribute(_record(labels={"finding": "unknown"}), "finding") is None
    assert record_attribute(_record(anatomy="chest"), "anatomy") == "chest"


def test_chest_xray_labels_are_read_from_the_labels_and_kept_as_they_are():
    record = _record(plane="PA", labels={"finding": "pneumonia", "age_group": "older adult", "age": 70})
    assert record_attribute(record, "plane") == "PA"
    assert record_attribute(record, "age_group") == "older adult"
    assert record_attribute(record, "age") == "70"
    assert record_attribute(record, "finding") == "pneumonia"
    assert record_attribute(_record(labels={"finding": "normal"}), "finding") == "normal"
    assert record_attribute(record, "sex") is None  # Kermany states no sex: not known, not a guess


def test_a_head_learns_only_from_the_images_that_state_its_attribute(tiny_manifest, tmp_path):
    records = load_manifest(tiny_manifest)
    labelled = [
        dataclasses.replace(r, labels={"sex": "female"} if i % 2 else {}) for i, r in enumerate(records)
    ]
    manifest = write_manifest(labelled, tiny_manifest.parent / "labelled.jsonl")
    recipe = smoke_config(
        manifest,
        tmp_path / "cls",
        task="classifier",
        steps=1,
        model={"channels": [8, 16], "attributes": {"sex": ["female", "male"]}},
    )
    config = config_from_dict(recipe)
    task = ClassifierTask(config, select_records(config.data), torch.device("cpu"))
    assert task.targets[:, 0].tolist() == [-1, 0] * (len(records) // 2)  # -1: ignored by the loss
    batch = {"image": torch.zeros(2, 1, 16, 16), "index": torch.tensor([0, 2])}  # no image states it
    loss, logs = task.loss(batch, task.modules())
    assert loss.item() == 0.0 and logs["acc_sex"].item() == 0.0


def test_a_tiny_classifier_trains_and_reads_real_slices(tiny_manifest, tmp_path):
    recipe = smoke_config(
        tiny_manifest, tmp_path / "cls", task="classifier", steps=4, amp=False, model={"channels": [8, 16]}
    )
    folder = train(config_from_dict(recipe))
    reader = DomainReader(folder)
    assert reader.card.task_info["attributes"]["modality"] == ["CT", "MR"]
    slices = [read_unit_image(p) for p in sorted(tiny_manifest.parent.glob("*.png"))[:2]]
    assert reader.features(slices).shape == (2, 16)
    reads = reader.attributes(slices)
    assert set(reads) == {"modality", "anatomy", "finding"} and len(reads["anatomy"]) == 2


def test_the_encoder_options_add_a_structure_head_and_a_contrastive_term(tiny_manifest, tmp_path):
    recipe = smoke_config(
        tiny_manifest,
        tmp_path / "enc",
        task="classifier",
        steps=3,
        amp=False,
        model={"channels": [8, 16], "attributes": {"modality": ["CT", "MR"]}},
        options={"contrastive": 1.0, "structure": 1.0},
    )
    folder = train(config_from_dict(recipe))
    reader = DomainReader(folder)
    assert set(reader.config.attributes) == {"modality", "structure"}
    log = (folder.parent / "log.jsonl").read_text().splitlines()
    assert "nt_xent" in log[-1] and "acc_structure" in log[-1]


def test_scrambling_keeps_the_tiles_and_the_intensity_and_destroys_the_layout():
    import torch

    from radsynth.train.tasks.classifier import nt_xent_loss, scramble

    torch.manual_seed(0)
    x = torch.linspace(-1, 1, 64).repeat(4, 1, 64, 1)  # (4, 1, 64, 64) horizontal ramps
    y = scramble(x)
    assert y.shape == x.shape and not torch.allclose(y, x)
    tiles = lambda t: t[2:].unfold(2, 16, 16).unfold(3, 16, 16).reshape(2, 16, -1)  # noqa: E731
    assert torch.allclose(tiles(x).sum(-1).sort(-1).values, tiles(y).sum(-1).sort(-1).values, atol=1e-4)
    assert torch.allclose(y[:2].mean((1, 2, 3)), x[:2].mean((1, 2, 3)), atol=0.05)
    same = torch.eye(4)
    assert nt_xent_loss(same, same, 0.1) < nt_xent_loss(same, same.roll(1, 0), 0.1)
