"""``radsynth bench`` end to end at tiny settings on the shipped LDM (correctness only: no
timing is asserted), and the shipped networks sampled by radsynth and by the reference
loops give images of the same statistics."""

import json

import pytest
import torch

from radsynth.bench.references import diffusers_sample, monai_sample, monai_scheduler
from radsynth.bench.report import markdown
from radsynth.bench.sampling import reference_model
from radsynth.cli import main
from radsynth.generate import load_pipeline
from radsynth.generate.models import resolve_checkpoint

PROMPTS = ["axial chest CT, lung window, tumour in the right lung", "axial T1-weighted brain MR"]
DISTILL_PROMPTS = [*PROMPTS, "coronal head CT, bone window", "sagittal T1-weighted brain MR"]
DISTILLED_RATIO = 0.7  # measured 0.37-0.57 per image


@pytest.mark.slow  # samples the shipped networks through every reference loop
def test_shipped_ldm_fast_path_and_references_agree():
    """The guided original through radsynth's fast path and through the references: the
    same noise and ODE, other discretisations."""
    pipeline = load_pipeline("demo-ct-mr-64", "ldm", distilled=False)
    ref = reference_model(resolve_checkpoint("demo-ct-mr-64", "ldm"), pipeline)
    ldm = pipeline.generator
    assert ref.unet is not ldm.denoiser.network  # the references get their own modules
    assert ldm.defaults.guidance_interval is None  # guided every step, as the references are
    ours = pipeline.sample(PROMPTS, [0, 1], steps=8)
    diffusers = diffusers_sample(ref, PROMPTS, [0, 1], 8, guidance=ldm.defaults.guidance)
    scheduler = monai_scheduler("ddim", ref.schedule, 8)
    ddim = monai_sample(ref, PROMPTS, [0, 1], scheduler, ldm.defaults.guidance)
    assert ours.shape == diffusers.shape == ddim.shape == (2, 1, 64, 64)
    for images in (diffusers, ddim):
        assert (images - ours).abs().mean() < 0.05  # same noise, same ODE, other discretisations
        assert abs(float(images.std() - ours.std())) < 0.03


@pytest.mark.slow  # samples the shipped chest X-ray networks through every reference loop
def test_flow_references_sample_the_shipped_flow_ldm_as_radsynth_does():
    """The chest X-ray LDM is a rectified flow: MONAI's RFlowScheduler (the network's sign
    flipped to MONAI's x0 - noise) walks radsynth's Euler grid exactly at 10 steps, so it
    must give radsynth's images; diffusers' flow-matching Euler ends its grid at sigma
    0.001, so it lands close. A reference fed the unflipped velocity would run the ODE
    backwards and fail both."""
    pipeline = load_pipeline("cxr-128", "ldm", distilled=False, precision="fp32")
    ref = reference_model(resolve_checkpoint("cxr-128", "ldm"), pipeline)
    assert ref.schedule.config.kind == "rflow"
    prompts = ["PA chest X-ray of a 60-year-old man, pneumonia", "AP chest X-ray of a 4-year-old girl"]
    guidance = pipeline.generator.defaults.guidance
    ours = pipeline.sample(prompts, [0, 1], steps=10)
    monai = monai_sample(ref, prompts, [0, 1], monai_scheduler("ddim", ref.schedule, 10), guidance)
    diffusers = diffusers_sample(ref, prompts, [0, 1], 10, guidance=guidance)
    assert ours.shape == monai.shape == diffusers.shape == (2, 1, 128, 128)
    assert (monai - ours).abs().max() < 2e-3
    assert (diffusers - ours).abs().mean() < 0.03


@pytest.mark.slow  # samples the shipped networks through every reference loop
def test_the_distilled_unet_draws_what_the_guided_original_draws():
    """One UNet row per step instead of two: each image lies much nearer the guided
    original's (scale 4) than the unguided sampler's does. Measured (fp32, AVX2) per image:
    distilled 0.015-0.043 mean absolute difference, unguided 0.030-0.075; a distilled UNet
    that had learnt nothing of the guidance would sit at a ratio near 1. In fp32 on every
    CPU: bf16 (the default where the CPU has it) rounds each path differently."""
    distilled = load_pipeline("demo-ct-mr-64", "ldm", precision="fp32")
    assert distilled.generator.uses_distilled(distilled.generator.defaults.guidance)
    guided = load_pipeline("demo-ct-mr-64", "ldm", distilled=False, precision="fp32")
    seeds = list(range(len(DISTILL_PROMPTS)))
    target = guided.sample(DISTILL_PROMPTS, seeds)
    fast = distilled.sample(DISTILL_PROMPTS, seeds)
    unguided = guided.sample(DISTILL_PROMPTS, seeds, guidance=1.0)

    def mad(a):  # per image, images in [0, 1]
        return (a - target).abs().flatten(1).mean(1)

    assert (mad(fast) < DISTILLED_RATIO * mad(unguided)).all(), (mad(fast), mad(unguided))


@pytest.mark.slow  # samples the shipped networks through every reference loop
def test_radsynth_bench_runs_and_writes_json(tmp_path, capsys):
    out = tmp_path / "sampling.json"
    args = ["bench", "--no-fidelity", "--batch-size", "2", "--repeats", "1", "--ddpm-steps", "3"]
    args += ["--ddim-steps", "3", "--train-repeats", "0", "--compare-steps", "2"]
    code = main([*args, "--out", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    methods = result["methods"]
    shipped = result["shipped"]
    assert shipped["guidance_interval"] is None and shipped["distilled"]
    assert set(methods) == {
        "radsynth",
        "radsynth_compiled",
        "radsynth_guided",
        "radsynth_interval",
        "radsynth_2",
        "diffusers_dpm",
        "monai_ddim",
        "monai_ddpm",
    }
    steps = shipped["steps"]
    # rows counted on the UNet: the references and the guided original guide every step
    # (2 rows per image), the distilled UNet runs one, an interval between the two
    assert methods["diffusers_dpm"]["unet_rows_per_image"] == 2 * steps
    assert methods["radsynth_guided"]["unet_rows_per_image"] == 2 * steps
    assert methods["monai_ddim"]["unet_rows_per_image"] == 2 * 3
    assert methods["radsynth"]["unet_rows_per_image"] == steps
    assert steps < methods["radsynth_interval"]["unet_rows_per_image"] < 2 * steps
    assert methods["radsynth"]["steps"] == methods["diffusers_dpm"]["steps"] == result["shipped"]["steps"]
    assert methods["monai_ddpm"]["steps"] == 3 and methods["radsynth_2"]["steps"] == 2
    assert all(m["images_per_s"] > 0 and m["peak_memory_mib"] > 0 for m in methods.values())
    # FLOPs grow with steps: one guided UNet forward per step plus one decode
    assert methods["radsynth_2"]["gflop_per_image"] < methods["radsynth"]["gflop_per_image"]
    assert result["unet"]["flops_per_forward"] > 1e9 and result["matmul_peak_gflops"]["fp32"] > 0
    assert set(result["targets"]) == {"monai_ddpm", "monai_ddim", "diffusers_dpm"}
    assert result["load_average"]["end"]
    printed = capsys.readouterr().out
    assert "UNet forward" in printed and "wrote" in printed
    assert markdown(result).count("\n") == 2 + len(methods) - 1


@pytest.mark.slow  # samples the shipped chest X-ray networks through every reference loop
def test_radsynth_bench_measures_the_flow_family_against_flow_references(tmp_path):
    """``radsynth bench --weights cxr-128``: the references are the libraries' flow samplers,
    the targets issue 18's, the prompt an X-ray one (a CT prompt would be refused), and the
    VP-only training comparison is skipped, saying why."""
    out = tmp_path / "sampling.json"
    args = ["bench", "--weights", "cxr-128", "--no-fidelity", "--batch-size", "2", "--repeats", "1"]
    args += ["--ddpm-steps", "4", "--ddim-steps", "4", "--train-repeats", "1"]
    assert main([*args, "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    methods = result["methods"]
    assert "FlowMatchEuler" in methods["diffusers_dpm"]["label"]
    assert "RFlow" in methods["monai_ddim"]["label"] and "RFlow" in methods["monai_ddpm"]["label"]
    assert result["shipped"]["sampler"] == "euler" and result["shipped"]["distilled"]
    assert methods["radsynth"]["unet_rows_per_image"] == result["shipped"]["steps"]  # distilled
    assert methods["monai_ddim"]["unet_rows_per_image"] == 2 * 4
    assert {k: v["speedup_target"] for k, v in result["targets"].items()} == {
        "monai_ddpm": 50.0,
        "monai_ddim": 5.0,
        "diffusers_dpm": 2.0,
    }
    assert "VP" in result["training"]["skipped"]


@pytest.mark.parametrize(
    "args", [["--batch-size", "0"], ["--compare-steps", "ten"], ["--batch-size", "2", "--repeats", "2"]]
)
def test_radsynth_bench_refuses_bad_settings(args, capsys):
    assert main(["bench", *args]) == 1
    assert "error" in capsys.readouterr().err


@pytest.mark.slow  # a training step of each reference
def test_training_comparison_steps_both_and_reports_the_one_time_encoding(tmp_path):
    from radsynth.bench.training import training_benchmark
    from radsynth.data.demo import build_demo
    from radsynth.models.registry import read_card

    demo = build_demo(size=64).folder  # six real training slices, paths made absolute
    lines = [json.loads(line) for line in (demo / "manifest.jsonl").read_text().splitlines()]
    subset = [{**r, "path": str(demo / r["path"])} for r in lines if r["split"] == "train"][:6]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in subset))
    card = read_card(resolve_checkpoint("demo-ct-mr-64", "ldm"))
    vae = resolve_checkpoint("demo-ct-mr-64", "vae")
    result = training_benchmark(card, vae, 2, repeats=1, device=torch.device("cpu"), manifest=str(manifest))
    for name in ("radsynth", "monai"):
        assert result[name]["images_per_s"] > 0 and 0 < result[name]["losses"][0] < 10
    assert result["radsynth"]["training_images_encoded_once"] == 6
    assert result["ratio"] > 0
