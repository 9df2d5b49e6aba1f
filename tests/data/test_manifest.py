import json

import pytest

from radsynth.data.manifest import Record, load_manifest, summarise, write_manifest
from radsynth.errors import InvalidInput


def _record(**changes):
    base = dict(
        path="images/a.png",
        text="axial chest CT, lung window, mid thorax, tumour in the right lung, 23 mm",
        modality="CT",
        subject="s1",
        split="train",
        source="PyPI pyradiomics==3.0.1",
        licence="BSD-3-Clause",
        anatomy="chest",
        plane="axial",
        window="lung",
        labels={"finding": "tumour", "side": "right", "size_mm": 23.1},
        spacing=(4.5, 4.5),
        shape=(64, 64),
    )
    return Record(**{**base, **changes})


def test_round_trip_keeps_every_field(tmp_path):
    records = [
        _record(),
        _record(path="images/b.png", subject="s2", split="test", labels={"finding": "none"}),
    ]
    path = write_manifest(records, tmp_path / "m" / "manifest.jsonl")
    assert load_manifest(path) == records
    assert records[0].resolve(path) == tmp_path / "m" / "images" / "a.png"
    assert summarise(records)["split"] == {"test": 1, "train": 1}


def test_bad_json_names_file_and_line(tmp_path):
    path = tmp_path / "manifest.jsonl"
    path.write_text(json.dumps(_record().to_dict()) + "\n\n{not json\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as err:
        load_manifest(path)
    assert str(err.value).startswith(f"{path}: line 3: bad JSON")
    assert "\n" not in str(err.value)


def test_missing_field_names_the_field(tmp_path):
    data = _record().to_dict()
    del data["subject"]
    path = tmp_path / "manifest.jsonl"
    path.write_text(json.dumps(data) + "\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"line 1: missing required field\(s\) subject"):
        load_manifest(path)


def test_missing_manifest(tmp_path):
    with pytest.raises(InvalidInput, match="manifest not found"):
        load_manifest(tmp_path / "nope.jsonl")
