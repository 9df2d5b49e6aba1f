"""Fréchet distances: zero for a set against itself, growing with a shift, and the
radiomics variant blind to a feature's scale."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.errors import InvalidInput
from radsynth.evaluate import frechet_distance, frechet_radiomics_distance


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
