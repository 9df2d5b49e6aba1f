"""The three real tasks, tiny, for a few steps each: they train, checkpoint, resume, and
their checkpoints load into the generation pipeline."""

from __future__ import annotations

import json

import pytest
import torch

from radsynth.errors import InvalidInput
from radsynth.models.checkpoint import load_checkpoint
from radsynth.sampling.pipeline import GenerationPipeline
from radsynth.train import config_from_dict, train

from .conftest import TINY_TASKS, smoke_config

pytestmark = pytest.mark.slow  # trains every task, tiny, and samples from it


@pytest.fixture(scope="module")
def tiny_vae(tiny_manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("vae")
    return train(config_from_dict(smoke_config(tiny_manifest, out, steps=4, amp=True, **TINY_TASKS["vae"])))


def _recipe(name, manifest, out, vae=None, **overrides):
    spec = json.loads(json.dumps(TINY_TASKS[name]))
    if vae is not None:
        spec["options"]["vae"] = str(vae)
    return smoke_config(manifest, out, **{"steps": 4, "amp": True, **spec, **overrides})


def test_vae_measures_its_latent_scale_and_trains_both_players(tiny_vae):
    state, card = load_checkpoint(tiny_vae)
    assert set(state) == {"vae"}  # the discriminator stays in the resume state
    assert card["task"] == "vae" and card["config"]["vae"]["latent_scale"] != 1.0
    log = [json.loads(x) for x in (tiny_vae.parent / "log.jsonl").read_text().splitlines()]
    assert log[-1]["d_loss"] > 0  # adversarial warm-up (2 steps) is over by step 4


@pytest.mark.parametrize("name", ["gan", "ldm"])
def test_text_conditioned_tasks_generate_from_their_checkpoint(name, tiny_manifest, tiny_vae, tmp_path):
    folder = train(
        config_from_dict(
            _recipe(name, tiny_manifest, tmp_path / name, vae=tiny_vae if name == "ldm" else None)
        )
    )
    state, card = load_checkpoint(folder)
    assert "text_encoder" in state and card["config"]["text_encoder"]["kind"] == "learned"
    if name == "ldm":
        assert set(state) == {"unet", "vae", "text_encoder"}
        assert (
            card["config"]["vae"]["latent_scale"]
            == load_checkpoint(tiny_vae)[1]["config"]["vae"]["latent_scale"]
        )
    images = GenerationPipeline.from_checkpoint(folder).generate("axial T1-weighted brain MR", n=2, steps=2)
    assert len(images) == 2 and images[0].array.shape == (16, 16)
    assert all(bool(torch.isfinite(torch.from_numpy(im.array)).all()) for im in images)


@pytest.mark.parametrize("name", ["vae", "gan", "ldm"])
def test_two_optimizer_and_frozen_module_tasks_resume_exactly(name, tiny_manifest, tiny_vae, tmp_path):
    vae = tiny_vae if name == "ldm" else None
    whole = train(config_from_dict(_recipe(name, tiny_manifest, tmp_path / "w", vae, steps=5)))
    train(config_from_dict(_recipe(name, tiny_manifest, tmp_path / "p", vae, steps=3)))
    parts = train(config_from_dict(_recipe(name, tiny_manifest, tmp_path / "p", vae, steps=5)), resume=True)
    a, b = load_checkpoint(whole)[0], load_checkpoint(parts)[0]
    assert all(torch.equal(a[m][k], b[m][k]) for m in a for k in a[m])


def test_ldm_refuses_a_checkpoint_that_is_not_a_vae(tiny_manifest, tmp_path):
    smoke = train(config_from_dict(smoke_config(tiny_manifest, tmp_path / "s", steps=1)))
    with pytest.raises(InvalidInput, match="options.vae must be a VAE checkpoint .or an LDM"):
        train(config_from_dict(_recipe("ldm", tiny_manifest, tmp_path / "l", vae=smoke)))


def test_ldm_reuses_the_vae_an_ldm_checkpoint_carries(tiny_manifest, tiny_vae, tmp_path):
    """A shipped LDM's VAE (and the latent scale it learnt on) serves as options.vae, so a
    distillation or fine-tune needs no VAE training run."""
    first = train(config_from_dict(_recipe("ldm", tiny_manifest, tmp_path / "a", vae=tiny_vae)))
    second = train(config_from_dict(_recipe("ldm", tiny_manifest, tmp_path / "b", vae=first)))
    (a, card_a), (b, card_b) = load_checkpoint(first), load_checkpoint(second)
    assert all(torch.equal(a["vae"][k], b["vae"][k]) for k in a["vae"])
    assert card_b["config"]["vae"]["latent_scale"] == card_a["config"]["vae"]["latent_scale"]
