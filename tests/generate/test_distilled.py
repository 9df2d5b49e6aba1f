"""Guidance distillation end to end at a tiny size: the LDM task in distill mode learns a
teacher's guided output, ``attach_distilled`` ships its UNet beside the teacher, and the
pipeline samples with it (one row per image) only at the distilled scale."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from radsynth.errors import InvalidInput
from radsynth.generate import load_pipeline
from radsynth.train import config_from_dict, train
from radsynth.train.tasks.ldm import attach_distilled
from tests.train.conftest import TINY_TASKS, build_manifest, smoke_config

pytestmark = pytest.mark.slow  # trains and distils a tiny LDM

PROMPT = "axial T1-weighted brain MR"


def _ldm(manifest, out, vae, **options):
    spec = json.loads(json.dumps(TINY_TASKS["ldm"]))
    spec["options"].update(vae=str(vae), text_encoder={"kind": "minilm"}, **options)
    return train(config_from_dict(smoke_config(manifest, out, **{"steps": 3, "amp": False, **spec})))


@pytest.fixture(scope="module")
def models(tiny_models, tmp_path_factory):
    """(teacher: a tiny LDM on MiniLM text, student distilled from it at scale 3, the teacher's
    copy with the student attached)."""
    root = tmp_path_factory.mktemp("distill")
    manifest = build_manifest(root / "corpus")
    teacher = _ldm(manifest, root / "teacher", tiny_models["vae"])
    student = _ldm(
        manifest, root / "student", tiny_models["vae"], distill={"teacher": str(teacher), "guidance": 3.0}
    )
    shipped = shutil.copytree(teacher, root / "shipped")
    attach_distilled(student, shipped)
    return teacher, student, shipped


def test_the_student_card_says_what_it_was_distilled_from(models):
    teacher, student, _ = models
    card = json.loads((student / "card.json").read_text())
    teacher_card = json.loads((teacher / "card.json").read_text())
    assert card["task_info"]["distilled"] == {"teacher": teacher_card["model_id"], "guidance": 3.0}
    assert card["config"]["unet"] == teacher_card["config"]["unet"]


def test_the_pipeline_samples_with_the_student_only_at_its_scale(models):
    _, _, teacher = models
    pipeline = load_pipeline(teacher, "ldm")
    assert pipeline.generator.uses_distilled(3.0) and not pipeline.generator.uses_distilled(4.0)
    fast = pipeline.generate(PROMPT, n=2, seed=0, steps=3, guidance=3.0)
    other = pipeline.generate(PROMPT, n=2, seed=0, steps=3, guidance=4.0)
    assert fast[0].metadata["guidance_distilled"] and not other[0].metadata["guidance_distilled"]
    guided = load_pipeline(teacher, "ldm", distilled=False).generate(
        PROMPT, n=2, seed=0, steps=3, guidance=3.0
    )
    assert not guided[0].metadata["guidance_distilled"]
    assert not np.array_equal(fast[0].array, guided[0].array)  # another network drew it
    pipeline.generator.use_guidance_interval((0.4, 1.0))  # an interval needs the two guided rows
    assert not pipeline.generator.uses_distilled(3.0)


def test_only_a_distilled_checkpoint_can_be_attached(models, tmp_path):
    teacher = shutil.copytree(models[0], tmp_path / "teacher")
    with pytest.raises(InvalidInput, match="not a guidance-distilled LDM"):
        attach_distilled(models[0], teacher)


def test_a_learned_text_encoder_cannot_be_distilled(tiny_models, tmp_path):
    spec = json.loads(json.dumps(TINY_TASKS["ldm"]))
    spec["options"].update(vae=str(tiny_models["vae"]), distill={"teacher": str(tiny_models["ldm"])})
    config = smoke_config(build_manifest(tmp_path / "corpus"), tmp_path / "student", **{"steps": 1, **spec})
    with pytest.raises(InvalidInput, match="frozen text encoder"):
        train(config_from_dict(config))
