"""The translation task in the one training loop (every mode, tiny), the degradations it
trains on (their statistics), and the translator's identity start."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from radsynth.data.degrade import lower_resolution, poisson_gaussian, rician
from radsynth.errors import InvalidInput
from radsynth.models.translator import Translator, TranslatorConfig
from radsynth.train.config import config_from_dict
from radsynth.train.loop import train

MODES = {
    "denoise": ({"mode": "denoise"}, {}),
    "sr": ({"mode": "sr"}, {}),
    "cycle": (
        {"mode": "cycle", "source": {"modality": "MR"}, "target": {"modality": "CT", "window": "bone"}},
        {"where": {"anatomy": ["brain", "head"], "window": [None, "bone"]}},
    ),
    "paired": (
        {
            "mode": "paired",
            "source": {"contrast": "T1-weighted"},
            "target": {"contrast": "PD-weighted"},
            "adversarial": 0.01,
            "crop": 32,
        },
        {"where": {"source": ["Debian insighttoolkit5-examples"], "subject": ["colin27"]}},
    ),
}


def _recipe(mode: str, out) -> dict:
    options, where = MODES[mode]
    return {
        "task": "translate",
        "model": {"channels": [8, 16], "num_res_units": 0, "disc_channels": 8, "disc_layers": 2},
        "options": options,
        "data": {"manifest": "demo:64", "split": "train", "image_size": 64, **where},
        "steps": 2,
        "batch_size": 8,
        "lr": 1e-3,
        "checkpoint_every": 2,
        "log_every": 1,
        "seed": 0,
        "out": str(out),
    }


@pytest.mark.parametrize("mode", list(MODES))
def test_every_mode_trains_in_the_one_loop(mode, tmp_path):
    """The translator starts as the identity; two optimiser steps must move it away, with
    finite losses logged for every step."""
    from radsynth.translate.volume import load_translator

    folder = train(config_from_dict(_recipe(mode, tmp_path / mode)))
    logged = [json.loads(line) for line in (folder.parent / "log.jsonl").read_text().splitlines()]
    losses = [row["loss"] for row in logged if "loss" in row]
    assert len(losses) == 2 and all(np.isfinite(losses))
    net = load_translator(mode, folder).net
    x = torch.rand(1, 1, 32, 32) * 2 - 1
    with torch.inference_mode():
        assert (net(x) - x).abs().mean() > 1e-4


def test_paired_and_cycle_need_source_and_target(tmp_path):
    recipe = _recipe("cycle", tmp_path / "x")
    recipe["options"] = {"mode": "cycle"}
    with pytest.raises(InvalidInput, match="source and options.target"):
        train(config_from_dict(recipe))


def test_residual_translator_starts_as_the_identity():
    net = Translator(TranslatorConfig(channels=(8, 16, 32), num_res_units=1))
    x = torch.rand(2, 1, 50, 38) * 2 - 1  # not a multiple of 4: padded and cropped back
    assert torch.equal(net(x), x)


def test_resize_upsampling_has_no_transposed_convolution_and_keeps_the_shape():
    net = Translator(
        TranslatorConfig(channels=(8, 16, 32), num_res_units=1, residual=False, upsample="resize")
    )
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in net.modules())
    assert any(isinstance(m, torch.nn.Upsample) for m in net.modules())
    assert net(torch.rand(2, 1, 50, 38)).shape == (2, 1, 50, 38)
    with pytest.raises(InvalidInput, match="model.upsample"):
        TranslatorConfig(upsample="pixelshuffle")


def test_restoration_sees_windowed_ct_on_the_hu_scale_of_translate():
    from radsynth.data.manifest import Record
    from radsynth.data.paired import TRANSLATION_HU_RANGE
    from radsynth.train.tasks.translate import hu_scale

    def record(modality, window):
        return Record("x.png", "", modality, "s", "train", "test", "test", window=window)

    (a_lung, b_lung), (a_mr, b_mr), (a_bone, b_bone) = hu_scale(
        [record("CT", "lung"), record("MR", None), record("CT", "bone")]
    ).tolist()
    lo, hi = TRANSLATION_HU_RANGE

    def hu(unit):
        return lo + unit * (hi - lo)

    # lung window (-600, 1500): [0, 1] is -1350..150 HU; bone (400, 1800): -500..1300 HU
    assert hu(b_lung) == pytest.approx(-1350, abs=0.1) and hu(a_lung + b_lung) == pytest.approx(150, abs=0.1)
    assert hu(b_bone) == pytest.approx(-500, abs=0.1) and hu(a_bone + b_bone) == pytest.approx(1300, abs=0.1)
    assert (a_mr, b_mr) == (1.0, 0.0)


def test_rician_noise_on_a_dark_background_has_the_rayleigh_mean():
    torch.manual_seed(0)
    noisy = rician(torch.zeros(1, 1, 256, 256), torch.tensor([0.05]))
    assert noisy.mean().item() == pytest.approx(0.05 * math.sqrt(math.pi / 2), rel=0.02)


def test_poisson_gaussian_noise_variance_follows_the_signal():
    torch.manual_seed(0)
    x = torch.full((1, 1, 256, 256), 0.5)
    noisy = poisson_gaussian(x, torch.tensor([1000.0]), 0.01)
    assert noisy.var().item() == pytest.approx(0.5 / 1000 + 0.01**2, rel=0.05)


def test_lower_resolution_keeps_the_mean_and_removes_detail():
    torch.manual_seed(0)
    x = torch.rand(1, 1, 64, 64)
    low = lower_resolution(x, 4)
    assert low.shape == x.shape and low.mean().item() == pytest.approx(x.mean().item(), abs=0.01)
    assert low.std().item() < 0.5 * x.std().item()


def test_restoration_patches_are_random_crops_of_the_slice():
    from radsynth.train.tasks.translate import random_crops

    torch.manual_seed(0)
    images = torch.arange(2 * 16 * 16, dtype=torch.float32).view(2, 1, 16, 16)
    crops = random_crops(images, 8)
    assert crops.shape == (2, 1, 8, 8)
    for image, crop in zip(images, crops, strict=True):  # a contiguous block of its own image
        y, x = divmod(int(crop[0, 0, 0] - image[0, 0, 0]), 16)
        assert torch.equal(crop, image[:, y : y + 8, x : x + 8])
    assert random_crops(images, 0) is images and random_crops(images, 32) is images


def test_cycle_structure_constraint_is_trained_and_logged(tmp_path):
    recipe = _recipe("cycle", tmp_path / "cycle")
    recipe["options"] = {**recipe["options"], "identity_weight": 0.0, "structure_weight": 2.0}
    with_structure = _logged(train(config_from_dict(recipe)))
    recipe["options"]["structure_weight"] = 0.0
    recipe["out"] = str(tmp_path / "plain")
    without = _logged(train(config_from_dict(recipe)))
    # same seed, same first batch and weights: the first generator loss differs by exactly
    # the weighted MIND term, which is not logged when its weight is 0
    first, plain = with_structure[0], without[0]
    assert first["structure"] > 0 and "structure" not in plain
    assert first["loss"] == pytest.approx(plain["loss"] + 2.0 * first["structure"], rel=1e-4)


def _logged(folder):
    lines = (folder.parent / "log.jsonl").read_text().splitlines()
    return [row for row in map(json.loads, lines) if "loss" in row]


def test_mind_ignores_contrast_and_sees_invented_structure():
    from radsynth.train.tasks.translate import mind

    square = torch.zeros(1, 1, 32, 32)
    square[..., 8:24, 8:24] = 1
    inverted = 2 - 3 * square  # the same anatomy in another contrast (bone: dark T1, bright CT)
    blob = square.clone()
    blob[..., 2:6, 2:6] = 1  # structure where the source is flat
    assert (mind(square) - mind(inverted)).abs().mean() < 1e-5
    assert (mind(square) - mind(blob)).abs().mean() > 0.01
    assert (mind(square) - mind(torch.rand(1, 1, 32, 32))).abs().mean() > 0.1
