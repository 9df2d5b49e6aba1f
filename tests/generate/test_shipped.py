"""The shipped demo models: present with complete cards, loadable by name, and generating
what the README's main job promises."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

import radsynth
from radsynth.cli import main
from radsynth.evaluate import DomainReader
from radsynth.generate import list_models
from radsynth.generate.models import WEIGHTS
from radsynth.models.checkpoint import CARD_KEYS, load_card

pytestmark = pytest.mark.slow  # the shipped models at full size, the attribute reader on their images

CHEST = "axial chest CT, lung window, tumour in the right lung"


def test_every_generator_and_the_classifier_ship_with_a_complete_card():
    assert {(m.name, m.kind) for m in list_models()} == {("demo-ct-mr-64", k) for k in ("ldm", "gan", "vae")}
    total = 0
    for folder in sorted((WEIGHTS / "demo-ct-mr-64").iterdir()):
        card = load_card(folder)
        for key in CARD_KEYS:
            assert key in card, f"{folder.name}: card lacks {key}"
        assert all(s["licence"] for s in card["data"]["sources"])
        size = (folder / "model.safetensors").stat().st_size
        assert size < 30e6, f"{folder.name}: {size / 1e6:.1f} MB"
        total += size
    assert total < 100e6


def test_load_pipeline_by_name_generates_reproducible_ct():
    pipeline = radsynth.load_pipeline("demo-ct-mr-64")
    first = pipeline.generate(CHEST, n=2, seed=0, steps=10)
    again = pipeline.generate(CHEST, n=1, seed=1, steps=10)
    assert [im.array.shape for im in first] == [(64, 64), (64, 64)]
    assert all(im.modality == "CT" for im in first)
    # image i is the same alone or in a batch, up to float rounding of batched convolutions
    assert np.abs(first[1].array - again[0].array).max() < 1e-4
    assert first[0].array.std() > 0.05  # an image, not a flat field


def test_the_attribute_classifier_reads_shipped_ldm_prompts_back():
    reader = DomainReader(WEIGHTS / "demo-ct-mr-64" / "classifier")
    pipeline = radsynth.load_pipeline("demo-ct-mr-64")
    ct = pipeline.generate(CHEST, n=4, seed=0)
    mr = pipeline.generate("axial T1-weighted brain MR, no lesion visible", n=4, seed=0)
    reads = reader.attributes([im.array for im in ct + mr])
    assert reads["modality"].count("CT") >= 3 and reads["modality"][4:].count("MR") >= 3


@pytest.mark.parametrize("kind", ["ldm", "gan", "vae"])
def test_the_cli_writes_marked_dicom_from_each_shipped_model(kind, tmp_path, capsys):
    code = main(
        [
            "generate",
            CHEST,
            "-n",
            "2",
            "--model",
            kind,
            "--steps",
            "10",
            "--format",
            "dicom",
            "-o",
            str(tmp_path),
        ]
    )
    assert code == 0, capsys.readouterr().err
    for path in sorted(tmp_path.glob("*.dcm")):
        ds = pydicom.dcmread(path)
        assert ds.ConversionType == "SYN" and f"{kind}-demo-64" in ds.DerivationDescription
        assert ds.Modality in ("CT", "OT")


def test_models_lists_the_shipped_checkpoints_and_their_sources(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "demo-ct-mr-64" in out and "ldm" in out and "gan" in out and "pyradiomics" in out
