"""Restoration on the contrast it never learnt (issue 20, part 4): the shipped denoiser and
x2 model on real FLAIR slices, against the classical filters as tuned on the validation T2
(``benchmarks/results/restoration_real.json``), with the benchmark's own degradations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from radsynth.evaluate.translation import body_mask
from radsynth.io import Image
from radsynth.translate import load_translator, translate_volume

from .conftest import benchmark_module

SUBJECT = "TCGA-DU-7294"  # a training subject's FLAIR: the contrast, not the anatomy, is new


@pytest.fixture(scope="module")
def bench():
    script = benchmark_module("restoration_real")
    if not script.GLIOMAS.is_dir():
        pytest.skip(f"{script.GLIOMAS} absent: these tests read the real glioma volumes")
    return script


@pytest.fixture(scope="module")
def flair(bench) -> Image:
    slab = bench.glioma(SUBJECT, "flair")
    return Image(slab.array[4:8], spacing=slab.spacing, modality="MR")  # 4 of the benchmark's 12


@pytest.fixture(scope="module")
def chosen(bench) -> dict:
    return json.loads(bench.RESULTS.read_text())["validation"]


def _psnr(prediction: np.ndarray, reference: Image) -> float:
    return benchmark_module("translation")._metrics(prediction, reference, body_mask(reference))["psnr"]


def test_the_denoiser_beats_curvature_flow_and_non_local_means_on_flair(bench, flair, chosen):
    noisy = benchmark_module("translation")._noisy(flair)
    model = _psnr(translate_volume(noisy, "denoise", load_translator("denoise")).array, flair)
    flow = _psnr(bench.curvature_flow(noisy, **chosen["curvature_flow"]["chosen"]), flair)
    means = _psnr(bench.non_local_means(noisy, **chosen["non_local_means"]["chosen"]), flair)
    assert model > max(flow, means) + bench.GOAL_DB, (model, flow, means)


def test_x2_super_resolution_beats_the_tuned_b_spline_on_flair(bench, flair, chosen):
    fine = bench._fine(flair)
    coarse = benchmark_module("translation")._coarse(fine, 2)
    model = _psnr(translate_volume(coarse, "sr2", load_translator("sr2")).array, fine)
    spline = _psnr(bench.bspline(coarse, fine.array.shape, **chosen["bspline"]["chosen"]), fine)
    assert model > spline, (model, spline)
