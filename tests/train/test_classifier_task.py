"""The attribute classifier task: labels from the manifest's facts, unknown ones ignored,
and a checkpoint the evaluation's reader loads."""

from __future__ import annotations

from radsynth.data.manifest import Record
from radsynth.evaluate import DomainReader
from radsynth.train import config_from_dict, train
from radsynth.train.data import read_unit_image
from radsynth.train.tasks.classifier import record_attribute

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


def test_a_tiny_classifier_trains_and_reads_real_slices(tiny_manifest, tmp_path):
    recipe = smoke_config(
        tiny_manifest, tmp_path / "cls", task="classifier", steps=4, amp=False, model={"channels": [8, 16]}
    )
    folder = train(config_from_dict(recipe))
    reader = DomainReader(folder)
    assert reader.card["task_info"]["attributes"]["modality"] == ["CT", "MR"]
    slices = [read_unit_image(p) for p in sorted(tiny_manifest.parent.glob("*.png"))[:2]]
    assert reader.features(slices).shape == (2, 16)
    reads = reader.attributes(slices)
    assert set(reads) == {"modality", "anatomy", "finding"} and len(reads["anatomy"]) == 2
