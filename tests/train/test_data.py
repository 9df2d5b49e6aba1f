"""Training data from several corpora (``data.also``) and images of another size (``data.fit``)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from radsynth.data.manifest import load_manifest, read_unit_image, write_manifest
from radsynth.errors import InvalidInput, UnreadableImage
from radsynth.train import config_from_dict, train
from radsynth.train.data import ManifestDataset, select_records

from .conftest import SIZE, build_manifest, smoke_config


@pytest.fixture(scope="module")
def second_corpus(tmp_path_factory) -> Path:
    """The tiny corpus at 12 px, re-labelled as another source with its own terms."""
    folder = tmp_path_factory.mktemp("second-corpus")
    manifest = build_manifest(folder, size=12)
    records = [replace(r, source="second source", licence="CC BY 4.0") for r in load_manifest(manifest)]
    return write_manifest(records, manifest)


def test_also_adds_the_selected_records_of_another_corpus_wherever_the_run_starts(
    tiny_manifest, second_corpus, tmp_path
):
    raw = smoke_config(tiny_manifest, tmp_path / "run")
    raw["data"]["also"] = [{"manifest": str(second_corpus), "where": {"subject": ["itk-0", "itk-1"]}}]
    config = config_from_dict(raw)
    here = os.getcwd()
    os.chdir(tmp_path)  # image paths of the added corpus do not depend on the working folder
    try:
        data = select_records(config.data)
        images = [ManifestDataset(data, SIZE, "resize")[i]["image"] for i in range(len(data.records))]
    finally:
        os.chdir(here)
    assert len(data.records) == 8 + 4 and all(im.shape == (1, SIZE, SIZE) for im in images)
    assert data.manifest == f"{tiny_manifest} + {second_corpus}"
    assert {"source": "second source", "licence": "CC BY 4.0", "count": 4} in data.sources()


def test_a_run_on_two_corpora_lists_both_sources_in_its_card(tiny_manifest, second_corpus, tmp_path):
    raw = smoke_config(tiny_manifest, tmp_path / "run", steps=3, checkpoint_every=3)
    raw["data"]["also"] = [{"manifest": str(second_corpus)}]
    folder = train(config_from_dict(raw), progress=False)
    card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    sources = [s["source"] for s in card["data"]["sources"]]
    assert sources == ["debian:insighttoolkit5-examples", "second source"]


def test_pad_keeps_a_smaller_image_s_pixels_as_they_are(tiny_manifest, second_corpus, tmp_path):
    raw = smoke_config(second_corpus, tmp_path / "run")
    data = select_records(config_from_dict(raw).data)
    original = read_unit_image(data.records[0].resolve(data.path))
    padded = (ManifestDataset(data, SIZE, "pad")[0]["image"][0] + 1) / 2
    resized = (ManifestDataset(data, SIZE, "resize")[0]["image"][0] + 1) / 2
    assert torch.allclose(padded[2:14, 2:14], torch.from_numpy(original), atol=1e-6)
    assert float(padded[:2].abs().max()) == 0.0 and float(padded[:, 14:].abs().max()) == 0.0
    assert not np.allclose(resized[2:14, 2:14].numpy(), original, atol=1e-3)
    big = select_records(config_from_dict(smoke_config(tiny_manifest, tmp_path / "run")).data)
    assert ManifestDataset(big, 12, "pad")[0]["image"].shape == (1, 12, 12)  # larger: still resized


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"fit": "squash"}, "data.fit must be one of resize, pad, got 'squash'"),
        ({"also": [{"split": "train"}]}, "missing key(s) data.also[0].manifest"),
        ({"also": [{"manifest": "m.jsonl", "size": 3}]}, "unknown key(s) data.also[0].size"),
        ({"also": {"manifest": "m.jsonl"}}, "data.also must be a list"),
    ],
)
def test_bad_data_keys_name_themselves(tmp_path, data, message):
    raw = smoke_config(Path("m.jsonl"), tmp_path)
    with pytest.raises(InvalidInput) as err:
        config_from_dict({**raw, "data": {**raw["data"], **data}})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_an_added_corpus_that_is_missing_or_selects_nothing_is_named(tiny_manifest, tmp_path):
    raw = smoke_config(tiny_manifest, tmp_path / "run")
    raw["data"]["also"] = [{"manifest": str(tmp_path / "nowhere.jsonl")}]
    with pytest.raises(InvalidInput, match="nowhere.jsonl"):
        select_records(config_from_dict(raw).data)
    raw["data"]["also"] = [{"manifest": str(tiny_manifest), "modalities": ["CT"]}]
    with pytest.raises(InvalidInput, match="no records with split 'train' and modalities"):
        select_records(config_from_dict(raw).data)


def test_an_added_corpus_pointing_outside_its_folder_or_at_nothing_is_one_line(tiny_manifest, tmp_path):
    """A hostile added manifest: a record that climbs out of its folder to a file that is
    not there fails on reading, naming the path it resolved to, never silently skipped."""
    folder = tmp_path / "hostile"
    folder.mkdir()
    record = replace(load_manifest(tiny_manifest)[0], path="../../../no/such/slice.png")
    write_manifest([record], folder / "manifest.jsonl")
    raw = smoke_config(tiny_manifest, tmp_path / "run")
    raw["data"]["also"] = [{"manifest": str(folder / "manifest.jsonl")}]
    data = select_records(config_from_dict(raw).data)
    with pytest.raises(UnreadableImage) as err:
        ManifestDataset(data, SIZE, "pad")[len(data.records) - 1]
    assert "slice.png" in str(err.value) and "\n" not in str(err.value)
