"""The copy audit on known cases: exact training copies are flagged 100 %, so are copies
brightened or re-contrasted; held-out real slices of other people are not."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.evaluate.privacy import COPY_THRESHOLD, copy_audit, correlation_matrix, near_copies


def _features(images):
    return images.reshape(len(images), -1)[:, ::64].astype(np.float64)


def test_a_set_of_exact_training_copies_is_flagged_entirely(training, held_out):
    copies = training.images[::4]
    audit = copy_audit(
        copies, training.images, _features(copies), _features(training.images), held_out.images
    )
    assert audit["share_synthetic_flagged"] == 1.0
    assert audit["share_training_copied"] == pytest.approx(len(copies) / len(training))
    assert audit["correlation"]["median"] == pytest.approx(1.0, abs=1e-5)
    assert audit["worst_pairs"][0]["correlation"] == pytest.approx(1.0, abs=1e-5)


def test_held_out_real_slices_are_not_copies_and_the_reference_says_so(training, held_out):
    audit = copy_audit(
        held_out.images,
        training.images,
        _features(held_out.images),
        _features(training.images),
        held_out.images,
    )
    assert audit["share_synthetic_flagged"] == 0.0
    assert audit["reference_held_out_real"]["max"] < COPY_THRESHOLD


def test_brightness_and_contrast_do_not_hide_a_copy(training):
    linear = 0.1 + 0.7 * training.images[:8]
    assert near_copies(linear, training.images).all()
    assert np.allclose(np.diag(correlation_matrix(linear, training.images[:8])), 1.0, atol=1e-5)


def test_a_gamma_and_a_clipping_window_do_not_hide_a_copy(training):
    """A non-linear change (gamma 0.7, then a window that clips the brightest 10 % of the
    range): Pearson correlation drops below 1, yet stays above the copy threshold."""
    originals = training.images[:8]
    altered = np.clip(originals**0.7 / 0.9, 0, 1)
    assert (altered == 1).any() and not np.allclose(altered, np.clip(originals / 0.9, 0, 1))
    correlations = np.diag(correlation_matrix(altered, originals))
    assert (correlations < 0.999).any()
    assert near_copies(altered, training.images).all()
