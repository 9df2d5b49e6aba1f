"""Membership inference on the shipped generators: the attack's AUC is 0.5 when members
and non-members are the same images, and the GAN (no loss to threshold) is skipped."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.errors import NotEnoughSamples
from radsynth.evaluate.membership import auroc, denoising_loss, membership_inference
from radsynth.generate import load_pipeline


def test_auroc_on_known_scores():
    labels = np.array([1, 1, 0, 0])
    assert auroc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == 1.0
    assert auroc(labels, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5


@pytest.fixture(scope="module")
def ldm():
    return load_pipeline("demo-ct-mr-64", "ldm", device="cpu")


@pytest.mark.slow  # samples the shipped LDM's denoising loss
def test_the_same_images_as_members_and_non_members_give_auc_one_half(ldm, training):
    group = training.subset(np.arange(0, 64, 6))  # 11 slices
    report = membership_inference(ldm, group, group, n_boot=20)
    for attack in ("ldm_denoising", "vae_reconstruction"):
        assert report[attack]["value"] == pytest.approx(0.5)
    assert report["members"] == report["non_members"] == 11


@pytest.mark.slow  # samples the shipped LDM's denoising loss
def test_the_denoising_loss_does_not_depend_on_the_batch(ldm, training):
    images, captions = training.images[:4], training.texts[:4]
    whole = denoising_loss(ldm, images, captions, batch=4)
    split = np.r_[
        denoising_loss(ldm, images[:1], captions[:1], batch=1),
        denoising_loss(ldm, images[1:], captions[1:], batch=3),
    ]
    assert split[0] == pytest.approx(whole[0], rel=1e-4)


def test_what_cannot_be_attacked_says_why(training, held_out):
    gan = load_pipeline("demo-ct-mr-64", "gan", device="cpu")
    assert "no loss or reconstruction" in membership_inference(gan, training, held_out)["skipped"]
    assert "no model to attack" in membership_inference(None, training, held_out)["skipped"]
    vae = load_pipeline("demo-ct-mr-64", "vae", device="cpu")
    with pytest.raises(NotEnoughSamples, match="not enough samples: need >= 10"):
        membership_inference(vae, training.subset([0, 1]), held_out)
