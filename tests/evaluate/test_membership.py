"""Membership inference on the shipped generators: the attack separates the LDM's training
slices from unseen subjects, gives 0.5 when members and non-members are the same images,
does not depend on the batch, and skips the GAN (no loss to threshold)."""

from __future__ import annotations

import numpy as np
import pytest

from radsynth.errors import InvalidInput, NotEnoughSamples
from radsynth.evaluate.membership import auroc, denoising_loss, membership_inference
from radsynth.generate import load_pipeline
from radsynth.models.registry import export_inference, shipped

from .conftest import spread


def test_auroc_on_known_scores():
    labels = np.array([1, 1, 0, 0])
    assert auroc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == 1.0
    assert auroc(labels, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5


@pytest.fixture(scope="module")
def ldm():
    return load_pipeline("demo-ct-mr-64", "ldm", device="cpu", exported=False)  # the encoder too


@pytest.mark.slow  # samples the shipped LDM's denoising loss
def test_the_attack_tells_the_models_training_slices_from_subjects_it_never_saw(ldm, training, held_out):
    """The shipped LDM's own training slices against held-out subjects' slices. Zeros from
    either loss give 0.5 and a flipped score sign gives 1 - AUC: both fail here. (Held-out
    subjects also differ in distribution, so this is the attack working, not a leak figure.)"""
    report = membership_inference(ldm, spread(training, 32), spread(held_out, 24), n_boot=50)
    assert (report["members"], report["non_members"]) == (32, 24)
    assert report["ldm_denoising"]["value"] > 0.75 and report["ldm_denoising"]["low"] > 0.6
    assert report["vae_reconstruction"]["value"] > 0.65 and report["vae_reconstruction"]["low"] > 0.5


@pytest.mark.slow  # samples the shipped LDM's denoising loss
def test_the_same_images_as_members_and_non_members_give_auc_one_half(ldm, training):
    group = training.subset(np.arange(0, 64, 6))  # 11 slices
    report = membership_inference(ldm, group, group, n_boot=20)
    for attack in ("ldm_denoising", "vae_reconstruction"):
        assert report[attack]["value"] == pytest.approx(0.5)
    assert report["members"] == report["non_members"] == 11


@pytest.mark.slow  # samples the shipped LDM's denoising loss
def test_the_denoising_loss_does_not_depend_on_the_batch(ldm, training):
    """Image i's noise is seeded by its index in the call, not its place in a chunk: every
    chunk size gives every image the same loss."""
    images, captions = training.images[:5], training.texts[:5]
    whole = denoising_loss(ldm, images, captions, batch=5)
    assert len(set(np.round(whole, 6))) == 5  # five different losses, so the check bites
    for batch in (1, 3):
        np.testing.assert_allclose(denoising_loss(ldm, images, captions, batch=batch), whole, rtol=1e-4)


@pytest.mark.slow  # loads three shipped generators
def test_what_cannot_be_attacked_says_why(training, held_out, tmp_path, monkeypatch):
    gan = load_pipeline("demo-ct-mr-64", "gan", device="cpu")
    assert "no loss or reconstruction" in membership_inference(gan, training, held_out)["skipped"]
    assert "no model to attack" in membership_inference(None, training, held_out)["skipped"]
    vae = load_pipeline("demo-ct-mr-64", "vae", device="cpu", exported=False)
    with pytest.raises(NotEnoughSamples, match="not enough samples: need >= 10"):
        membership_inference(vae, training.subset([0, 1]), held_out)
    monkeypatch.setenv("RADSYNTH_CACHE", str(tmp_path))
    export_inference(shipped("vae"))  # the VAE's trace holds only its decoder
    decoder_only = load_pipeline("demo-ct-mr-64", "vae", device="cpu", precision="fp32")
    with pytest.raises(InvalidInput, match=r"exported=False"):
        membership_inference(decoder_only, training, held_out)
