"""Tiny trained generators (a few steps on real ITK MR slices) for the generation
workflow tests; the shipped demo models are tested on their own where they are used."""

from __future__ import annotations

import json

import pytest

from radsynth.train import config_from_dict, train
from tests.train.conftest import TINY_TASKS, build_manifest, smoke_config


def _recipe(name, manifest, out, **options):
    spec = json.loads(json.dumps(TINY_TASKS[name]))
    spec["options"].update(options)
    return config_from_dict(smoke_config(manifest, out, **{"steps": 3, "amp": False, **spec}))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """{kind: checkpoint folder} for vae, gan and ldm, each trained 3 steps."""
    root = tmp_path_factory.mktemp("tiny-generators")
    manifest = build_manifest(root / "corpus")
    vae = train(_recipe("vae", manifest, root / "vae"))
    return {
        "vae": vae,
        "gan": train(_recipe("gan", manifest, root / "gan")),
        "ldm": train(_recipe("ldm", manifest, root / "ldm", vae=str(vae))),
    }
