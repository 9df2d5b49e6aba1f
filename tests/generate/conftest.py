"""Tiny trained generators (a few steps on real ITK MR slices, or on real chest X-rays for
the X-ray family) for the generation workflow tests; the shipped demo models are tested
on their own where they are used."""

from __future__ import annotations

import json
import shutil

import numpy as np
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


CXR_IMAGES = 8  # real NIH chest X-rays, PA and AP, with the corpus builder's captions
CXR_SIZE = 32  # pixels of the manifest: the super-resolution stage's; the LDM draws at half


def build_cxr_manifest(folder):
    """8 real chest X-rays of ../shared/data's NIH subset at 32 px, captioned as ``radsynth
    data cxr`` captions them (view, age, sex, findings)."""
    from PIL import Image

    from radsynth.data.cxr import caption
    from radsynth.data.cxr_sources import NIH, read_nih
    from radsynth.data.manifest import Record, write_manifest
    from tests.data.conftest import SHARED_DATA
    from tests.train.conftest import _write_png16

    assert (SHARED_DATA / NIH).is_dir(), (
        f"{SHARED_DATA / NIH} missing: the chest X-ray tests need ../shared/data"
    )
    items = [item for item in read_nih(SHARED_DATA / NIH).items if item.view in ("PA", "AP")][:CXR_IMAGES]
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for item in items:
        grey = Image.open(item.image).convert("L").resize((CXR_SIZE, CXR_SIZE), Image.Resampling.LANCZOS)
        _write_png16(np.asarray(grey, np.float32) / 255.0, folder / f"{item.key}.png")
        records.append(
            Record(
                path=f"{item.key}.png",
                text=caption(item),
                modality="DX",
                subject=item.subject,
                split="train",
                source=item.source,
                licence=item.licence,
                anatomy="chest",
                plane=item.view,
            )
        )
    return write_manifest(records, folder / "manifest.jsonl")


@pytest.fixture(scope="session")
def tiny_cxr(tmp_path_factory):
    """A tiny chest X-ray family laid out as a shipped one: ``<family>/ldm`` (16 px, its VAE
    and LDM 3 steps each on 8 real X-rays) and ``<family>/translate-sr2`` (x2 restoration,
    3 steps at 32 px). Returns the LDM's folder."""
    root = tmp_path_factory.mktemp("tiny-cxr")
    manifest = build_cxr_manifest(root / "corpus")
    vae = train(_recipe("vae", manifest, root / "vae"))
    family = root / "family"
    shutil.copytree(train(_recipe("ldm", manifest, root / "ldm", vae=str(vae))), family / "ldm")
    sr = smoke_config(manifest, root / "sr", **{"steps": 3, "amp": False, **TINY_SR})
    sr["data"]["image_size"] = CXR_SIZE
    shutil.copytree(train(config_from_dict(sr)), family / "translate-sr2")
    return family / "ldm"


TINY_SR = {
    "task": "translate",
    "model": {"channels": [8, 16], "num_res_units": 1},
    "options": {"mode": "sr", "sr_factors": [2]},
}
