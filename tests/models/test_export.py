"""The shipped inference exports (TorchScript traces, radsynth.models.export) against the
eager MONAI networks they were traced from: same outputs within float32 rounding for
every exported network of every shipped checkpoint, at batch sizes other than the
traced one; a trace made from other weights is never loaded."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from radsynth.models.export import EXPORT, INFERENCE_NETWORKS, MANIFEST, example_inputs, load_exported
from radsynth.models.registry import load_distilled_unet, load_pretrained, shipped_models

EXPORTED = [m for m in shipped_models() if m.card().task in INFERENCE_NETWORKS]
ATOL = 1e-4  # fp32: the traces run the same kernels; a reordered reduction is ~1e-6


def _eager(folder, card):
    modules = dict(load_pretrained(folder).modules)
    if card.task_info.get("distilled_unet"):
        modules["distilled"] = load_distilled_unet(folder, card)
    for module in modules.values():  # the path a pipeline runs by default (fused attention)
        for sub in module.modules():
            if isinstance(getattr(sub, "use_flash_attention", None), bool):
                sub.use_flash_attention = True
    return modules


def _call(name, module, inputs):
    return module.decode_stage_2_outputs(*inputs) if name == "vae" else module(*inputs)


@pytest.mark.parametrize("model", EXPORTED, ids=lambda m: f"{m.name}/{m.kind}")
def test_every_export_matches_its_eager_network(model):
    card = model.card()
    traces = load_exported(model.folder, card)
    assert traces is not None, f"{model.kind}: no up-to-date export (run scripts/export_models.py)"
    eager = _eager(model.folder, card)
    expected = set(INFERENCE_NETWORKS[card.task]) | ({"distilled"} if "distilled" in eager else set())
    assert set(traces) == expected
    for name, trace in traces.items():
        for batch in (1, 3):
            inputs = example_inputs(name, card, batch)
            with torch.inference_mode():
                got, want = _call(name, trace, inputs), _call(name, eager[name], inputs)
            if isinstance(want, dict):
                assert got.keys() == want.keys()
                for key in want:
                    torch.testing.assert_close(got[key], want[key], atol=ATOL, rtol=0)
            else:
                torch.testing.assert_close(got, want, atol=ATOL, rtol=0)


def test_exports_fit_the_shipped_weights_budget():
    files = [p for m in EXPORTED for p in (m.folder / EXPORT).glob("*.ts")]
    assert files and all(p.stat().st_size < 30e6 for p in files)
    weights = EXPORTED[0].folder.parent.parent
    assert sum(p.stat().st_size for p in weights.rglob("*") if p.is_file()) < 150e6


def test_a_stale_export_is_not_loaded_and_the_eager_network_is(tmp_path):
    model = next(m for m in EXPORTED if m.kind == "vae")
    folder = tmp_path / "vae"
    shutil.copytree(model.folder, folder)
    assert load_exported(folder, model.card()) is not None
    manifest = folder / EXPORT / MANIFEST
    entries = json.loads(manifest.read_text())
    entries["vae"]["sha256"] = "0" * 64  # as if the weights had been retrained since
    manifest.write_text(json.dumps(entries))
    assert load_exported(folder, model.card()) is None
    loaded = load_pretrained(folder, exported=True)
    assert type(loaded.modules["vae"]).__name__ == "AutoencoderKL"
