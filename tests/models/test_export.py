"""The inference exports (TorchScript traces, radsynth.models.export) against the eager
MONAI networks they were traced from: same outputs within float32 rounding for every
exported network of every shipped checkpoint, at batch sizes other than the traced one;
traces live in the user's cache (here a temporary one), one folder per checkpoint folder;
a trace made from other weights, or a cache that cannot be written, means the eager
networks."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from radsynth.cli import main
from radsynth.errors import InvalidInput
from radsynth.models.export import INFERENCE_NETWORKS, MANIFEST, example_inputs, load_exported, trace_folder
from radsynth.models.registry import (
    ShippedModel,
    export_inference,
    export_shipped,
    inference_networks,
    load_distilled_unet,
    load_pretrained,
    shipped,
    shipped_models,
)
from radsynth.sampling.pipeline import GenerationPipeline

EXPORTED = [m for m in shipped_models() if m.card().task in INFERENCE_NETWORKS]
SLOW_TO_TRACE = {"ldm"}  # its UNets take ~10 s to trace on 2 cores; the rest ~1 s each
ATOL = 1e-4  # fp32: the traces run the same kernels; a reordered reduction is ~1e-6


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RADSYNTH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def vae(tmp_path):
    """A copy of the shipped VAE checkpoint (the quickest to trace) that a test may alter."""
    model = next(m for m in EXPORTED if m.kind == "vae")
    return shutil.copytree(model.folder, tmp_path / "vae")


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


@pytest.mark.parametrize(
    "model",
    [pytest.param(m, marks=pytest.mark.slow) if m.kind in SLOW_TO_TRACE else m for m in EXPORTED],
    ids=lambda m: f"{m.name}/{m.kind}",
)
def test_every_export_matches_its_eager_network(model, cache):
    card = model.card()
    assert export_inference(model.folder).parent == cache / "traces"
    traces = load_exported(model.folder, card)
    assert traces is not None
    eager = _eager(model.folder, card)
    assert (
        set(traces)
        == set(inference_networks(card))
        == set(INFERENCE_NETWORKS[card.task]) | ({"distilled"} if "distilled" in eager else set())
    )
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


def _is_eager(folder):
    return type(load_pretrained(folder, exported=True).modules["vae"]).__name__ == "AutoencoderKL"


def test_without_traces_the_eager_networks_load(cache, vae):
    assert _is_eager(vae)


def test_a_pipeline_draws_the_same_images_from_traces_as_from_the_eager_networks(cache):
    export_inference(shipped("vae"))
    fast, eager = (
        GenerationPipeline.from_checkpoint(shipped("vae"), device="cpu", precision="fp32", exported=exported)
        for exported in (True, False)
    )
    assert type(fast.generator.vae).__name__ == "ExportedDecoder"
    assert type(eager.generator.vae).__name__ == "AutoencoderKL"
    images = [[i.array for i in p.generate("axial T1-weighted brain MR", n=2, seed=3)] for p in (fast, eager)]
    np.testing.assert_allclose(*images, atol=1e-5)  # README: at most 3.9e-6, images in [0, 1]


@pytest.mark.parametrize("kind", ["vae", "gan"])
def test_bf16_traces_compute_what_the_eager_networks_compute_under_bf16_autocast(cache, kind):
    """A trace made under autocast records autocast's casts: where ``auto`` means bf16 the
    pipeline keeps its fast start (no MONAI import) and its networks' exact outputs."""
    folder = shipped(kind)
    card = next(m for m in EXPORTED if m.kind == kind).card()
    export_inference(folder, precisions=("fp32", "bf16"))
    names = inference_networks(card)
    assert set(json.loads((trace_folder(folder) / MANIFEST).read_text())) == {
        *names,
        *(f"{n}@bf16" for n in names),
    }
    traces, eager = load_exported(folder, card, "bf16"), _eager(folder, card)
    for name, trace in traces.items():
        for batch in (1, 3):
            inputs = example_inputs(name, card, batch)
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                got, want = _call(name, trace, inputs), _call(name, eager[name], inputs)
            assert got.dtype == want.dtype == torch.bfloat16
            torch.testing.assert_close(got, want, atol=0, rtol=0)
    pipeline = GenerationPipeline.from_checkpoint(folder, device="cpu", precision="bf16")
    network = pipeline.generator.vae if kind == "vae" else pipeline.generator.net
    assert type(network).__module__ == "radsynth.models.export"  # the bf16 trace, not MONAI's network


def test_traces_are_kept_per_checkpoint_folder_outside_it(cache, vae):
    shipped = next(m for m in EXPORTED if m.kind == "vae")
    assert trace_folder(vae) != trace_folder(shipped.folder)  # same weights, other folder: not shared
    assert trace_folder(vae).parent == cache / "traces" and trace_folder(vae).name.startswith(
        f"{vae.parent.name}-vae-"
    )
    export_inference(vae)
    assert not (vae / "export").exists() and (trace_folder(vae) / MANIFEST).is_file()
    assert load_exported(shipped.folder, shipped.card()) is None
    assert set(load_exported(vae, shipped.card())) == {"vae"} and not _is_eager(vae)


def test_a_stale_export_is_not_loaded_and_the_eager_network_is(cache, vae):
    export_inference(vae)
    manifest = trace_folder(vae) / MANIFEST
    made = json.loads(manifest.read_text())
    stale = {
        "retrained since": {"vae": {**made["vae"], "sha256": "0" * 64}},
        "traced by another torch (a cache shared across environments)": {
            "vae": {**made["vae"], "torch": "1.0"}
        },
    }
    for why, entries in stale.items():
        manifest.write_text(json.dumps(entries))
        assert _is_eager(vae), why
    manifest.write_text(json.dumps(made))
    assert not _is_eager(vae)
    (trace_folder(vae) / "vae.ts").write_bytes(b"not a TorchScript archive")  # damaged in the cache
    assert _is_eager(vae)


def test_an_unwritable_cache_is_one_clear_error_and_loading_still_works(tmp_path, monkeypatch, vae):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("RADSYNTH_CACHE", str(blocker / "cache"))
    with pytest.raises(InvalidInput, match="cannot"):
        export_inference(vae)
    assert _is_eager(vae)


def test_export_shipped_traces_once_then_skips_until_forced(cache, vae, monkeypatch, capsys):
    monkeypatch.setattr("radsynth.models.registry.shipped_models", lambda: [ShippedModel("copy", "vae", vae)])
    assert [r.built for r in export_shipped()] == [True]
    made = (trace_folder(vae) / MANIFEST).stat().st_mtime_ns
    assert [(r.built, r.traces) for r in export_shipped()] == [(False, trace_folder(vae))]
    assert main(["models", "export"]) == 0 and "copy/vae: fresh, skipped" in capsys.readouterr().out
    assert (trace_folder(vae) / MANIFEST).stat().st_mtime_ns == made
    assert [r.built for r in export_shipped(force=True)] == [True]
