"""Fréchet distances: zero for a set against itself, growing with a shift, and the
radiomics variant blind to a feature's scale; KID and precision/recall on known cases."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.errors import InvalidInput
from radsynth.evaluate import frechet_distance, frechet_radiomics_distance
from radsynth.evaluate.fidelity import fidelity, kid, prdc


def test_frechet_distance_matches_the_closed_form_for_shifted_gaussians():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4000, 3))
    b = a + np.array([2.0, 0.0, 0.0])  # same covariance, mean moved by 2: distance = 4
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(a, b) == pytest.approx(4.0, rel=1e-3)


def test_radiomics_distance_does_not_depend_on_feature_units():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(500, 4))
    synthetic = rng.normal(loc=0.5, size=(500, 4))
    scale = np.array([1.0, 1e6, 1e-3, 42.0])
    assert frechet_radiomics_distance(real * scale, synthetic * scale) == pytest.approx(
        frechet_radiomics_distance(real, synthetic), rel=1e-6
    )


def test_sets_of_different_dimension_are_refused():
    with pytest.raises(InvalidInput, match="equal D"):
        frechet_distance(np.zeros((5, 3)), np.zeros((5, 4)))


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(300, 8)), rng.normal(size=(300, 8))
    assert abs(kid(a, b)) < 0.02
    assert kid(a, b + 1.0) > 0.5


def test_identical_sets_have_precision_and_recall_one_and_a_shifted_set_less():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(200, 16))
    same = prdc(real, real.copy())
    assert same["precision"] == 1.0 and same["recall"] == 1.0 and same["coverage"] == 1.0
    far = prdc(real, real + 3.0)
    assert far["precision"] < 0.2 and far["recall"] < 0.2


def test_identical_sets_score_frd_zero_with_intervals_and_tiny_sets_emit_no_number():
    rng = np.random.default_rng(4)
    radiomics, domain = rng.normal(size=(60, 20)) * 50, rng.normal(size=(60, 8))
    report = fidelity(radiomics, radiomics.copy(), domain, domain.copy(), n_boot=20)
    assert report["frd"]["value"] == pytest.approx(0.0, abs=1e-6)
    assert 0 <= report["frd"]["low"] <= report["frd"]["high"]
    assert report["prdc"]["precision"]["value"] == report["prdc"]["recall"]["value"] == 1.0
    tiny = fidelity(radiomics[:4], radiomics[:4], domain[:4], domain[:4], n_boot=5)
    for name in ("frd", "fid_domain", "kid_domain", "prdc"):
        assert tiny[name] == {"skipped": tiny[name]["skipped"]}
        assert "not enough samples: need >= " in tiny[name]["skipped"]


@pytest.mark.slow  # radiomics of a whole held-out set
def test_a_real_set_against_itself_scores_frd_zero_and_precision_recall_one(held_out):
    from radsynth.evaluate.features import DomainReader, radiomics_features
    from radsynth.models.registry import shipped

    images = held_out.images[::4]  # 12 real slices, CT and MR
    radiomics, _ = radiomics_features(list(images))
    domain = DomainReader(shipped("encoder")).features(images)
    report = fidelity(radiomics, radiomics.copy(), domain, domain.copy(), n_boot=5)
    assert report["frd"]["value"] == pytest.approx(0.0, abs=1e-6)
    assert report["fid_domain"]["value"] == pytest.approx(0.0, abs=1e-6)
    assert report["prdc"]["precision"]["value"] == report["prdc"]["recall"]["value"] == 1.0
