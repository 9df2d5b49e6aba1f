"""Radiomics features and adherence scoring on real demo slices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from radsynth.evaluate import adherence, adherence_to, prompt_attributes, radiomics_features

ITK = Path("/usr/share/doc/insighttoolkit5-examples/examples/Data")


@pytest.fixture(scope="module")
def real_slices():
    from PIL import Image

    names = ["BrainT1Slice.png", "BrainProtonDensitySlice.png"]
    if not all((ITK / n).is_file() for n in names):
        pytest.skip("insighttoolkit5-examples is not installed")
    return [np.asarray(Image.open(ITK / n).convert("L").resize((64, 64)), np.float32) / 255 for n in names]


def test_radiomics_features_cover_first_order_texture_and_filters(real_slices):
    values, names = radiomics_features(real_slices)
    assert values.shape == (2, len(names)) and len(names) > 300
    assert any(n.startswith("original_firstorder") for n in names)
    assert any(n.startswith("wavelet-") and "_glcm_" in n for n in names)
    assert any(n.startswith("log-sigma-2-0") for n in names)
    assert np.isfinite(values).mean() > 0.99
    assert not np.allclose(values[0], values[1])  # two contrasts of one slice differ


def test_prompt_attributes_follow_the_parser():
    assert prompt_attributes("axial chest CT, lung window, tumour in the right lung") == {
        "modality": "CT",
        "anatomy": "chest",
        "finding": "present",
    }
    assert prompt_attributes("axial T1-weighted brain MR, no lesion visible")["finding"] == "absent"
    assert prompt_attributes("coronal head CT")["finding"] is None


def test_adherence_scores_only_what_the_prompt_states():
    prompts = [
        "axial chest CT, lung window",
        "coronal head CT",
        "axial T1-weighted brain MR, no lesion visible",
    ]
    reads = {
        "modality": ["CT", "MR", "MR"],
        "anatomy": ["chest", "head", "head"],
        "finding": ["absent", "present", "absent"],
    }
    report = adherence(prompts, reads)
    assert report["modality"]["accuracy"] == pytest.approx(2 / 3)
    assert report["anatomy"]["confusion"]["brain"] == {"head": 1}
    assert report["finding"]["n"] == 1 and report["finding"]["accuracy"] == 1.0


def test_adherence_to_known_attributes_scores_only_the_stated_ones():
    asked = [{"sex": "male", "plane": "PA"}, {"sex": None, "plane": "AP"}, {"plane": "frontal"}]
    reads = {"sex": ["male", "female", "female"], "plane": ["PA", "PA", "frontal"]}
    report = adherence_to(asked, reads)
    assert report["sex"] == {"accuracy": 1.0, "n": 1, "confusion": {"male": {"male": 1}}}
    assert report["plane"]["accuracy"] == pytest.approx(2 / 3)
    assert report["plane"]["confusion"]["AP"] == {"PA": 1}
