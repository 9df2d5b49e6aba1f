"""MS-SSIM among samples: 1 for identical samples, lower across different slices; the
window fitted to 64 px; duplicates found."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.errors import NotEnoughSamples
from radsynth.evaluate.diversity import diversity, ms_ssim_window
from radsynth.evaluate.sets import ImageSet


def _as_samples(images: np.ndarray, prompts: list[str]) -> ImageSet:
    n = len(images)
    return ImageSet(
        "synthetic", images, tuple(prompts), ("MR",) * n, {"finding": (None,) * n}, tuple(prompts)
    )


def test_the_window_shrinks_to_fit_five_scales():
    assert ms_ssim_window(256) == 11 and ms_ssim_window(64) == 3
    with pytest.raises(NotEnoughSamples, match="need > 32 px"):
        ms_ssim_window(32)


@pytest.mark.slow  # MS-SSIM over every pair
def test_a_collapsed_generator_scores_one_within_a_prompt_and_real_slices_less(held_out):
    collapsed = np.repeat(held_out.images[[0, -1]], 6, axis=0)  # two prompts, six identical samples each
    report = diversity(_as_samples(collapsed, ["a"] * 6 + ["b"] * 6), n_pairs=30)
    assert report["ms_ssim_within_prompt"]["value"] == pytest.approx(1.0, abs=1e-4)
    assert report["ms_ssim_across_prompts"]["value"] < 0.9
    assert report["duplicates"]["share_of_images"] == 1.0
    varied = diversity(_as_samples(held_out.images[:24], ["a"] * 12 + ["b"] * 12), n_pairs=30)
    assert varied["ms_ssim_within_prompt"]["value"] < 0.9
    assert varied["ms_ssim_within_prompt"]["window_px"] == 3


def test_one_sample_per_prompt_reports_why_there_is_no_within_prompt_value(held_out):
    report = diversity(_as_samples(held_out.images[:6], list("abcdef")))
    assert "not enough samples: need >= 5" in report["ms_ssim_within_prompt"]["skipped"]
