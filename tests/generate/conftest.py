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


class TinyModels(dict):
    """{kind: checkpoint folder} for vae, gan and ldm, each trained 3 steps on first use (the
    LDM trains its VAE first), so a session trains only the kinds its tests ask for."""

    def __init__(self, root):
        super().__init__()
        self.root = root
        self.manifest = None

    def __missing__(self, kind):
        if self.manifest is None:
            self.manifest = build_manifest(self.root / "corpus")
        options = {"vae": str(self["vae"])} if kind == "ldm" else {}
        self[kind] = train(_recipe(kind, self.manifest, self.root / kind, **options))
        return self[kind]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """{kind: checkpoint folder} for vae, gan and ldm, each trained 3 steps when first used."""
    return TinyModels(tmp_path_factory.mktemp("tiny-generators"))
