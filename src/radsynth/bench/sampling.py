"""Generation speed side by side: radsynth's pipeline at its shipped settings against
MONAI's latent-diffusion inferer (DDPM-1000, DDIM-50) and diffusers' DPM-Solver++ loop
at radsynth's step count, on the same trained networks, prompts and seeds.

Every method generates the same batches (``batch_size`` held-out captions, one seed per
image); the batches are interleaved across methods (A B C A B C ...) and each method's
median seconds per batch gives its images/s. The same images give the fidelity: Fréchet
Radiomics Distance against every held-out real slice, beside the distance of as many
real training slices (the floor at that sample size). The 1000-step DDPM reference runs
once, on the first batch: at ~40x the cost of the others its fidelity would need most of
an hour per method-sized sample on a 2-core CPU, so it is timed, not scored. Every FRD
carries a 95 % bootstrap interval, and each reference the paired interval of radsynth's FRD
minus its own (the same prompts and seeds, resampled together): "equal or better fidelity"
means that interval reaches 0.

A rectified-flow LDM (the chest X-ray family, ``--weights cxr-128``) is measured the same
way against each library's flow sampler (``radsynth.bench.references``; the rows keep their
keys), on its own corpus: held-out captions and images of the chest X-ray test patients,
built from ``../shared/data`` into the cache when missing; its targets are issue 18's
(``FLOW_TARGETS``), and the training comparison, written for VP models, is skipped.

FLOPs per image come from ``torch.utils.flop_counter``: the UNet rows each method
actually runs per image (counted by a hook on its UNet during warm-up: 2 per guided step,
1 per step outside radsynth's guidance interval) x the FLOPs of one row + the VAE
decode. One more radsynth row flips the guidance interval (``radsynth.sampling.guidance``):
guidance at ``BenchSettings.guidance_interval`` only when the shipped card guides every
step, at every step when the card has an interval, so its speed and fidelity show. The
UNet's achieved FLOP/s are measured on its own forward at the guided batch (2 x batch)
and set against the measured fp32 and bf16 matrix-multiply peaks.
"""

from __future__ import annotations

import platform
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radsynth.bench.measure import (
    Timed,
    count_flops,
    interleaved,
    load_average,
    matmul_peak_gflops,
)
from radsynth.bench.references import LatentModel, diffusers_sample, monai_sample, monai_scheduler
from radsynth.bench.training import training_benchmark
from radsynth.generate.models import default_device, load_pipeline, resolve_checkpoint
from radsynth.io.cache import cache_root
from radsynth.models.card import Card
from radsynth.models.diffusion import NoiseConfig, NoiseSchedule
from radsynth.models.precision import cpu_has_fast_bf16
from radsynth.models.registry import DEFAULT_FAMILY, load_pretrained, read_card
from radsynth.sampling.pipeline import GenerationPipeline

TARGETS = {"monai_ddpm": 50.0, "monai_ddim": 3.0, "diffusers_dpm": 1.5}  # issue 9, the demo LDM
FLOW_TARGETS = {"monai_ddpm": 50.0, "monai_ddim": 5.0, "diffusers_dpm": 2.0}  # issue 18, the flow LDM
CT_PROMPT = "axial chest CT, lung window, tumour in the right lung"  # without --fidelity


@dataclass(frozen=True)
class BenchSettings:
    """What one benchmark run does. ``repeats`` timed batches per method (their images
    are also the fidelity sample when ``fidelity``); ``compare_steps``: extra radsynth rows
    at other step counts; ``train_repeats`` 0 skips the training comparison;
    ``ddpm_timed_steps``: time only the first N DDPM steps and scale them to all (every
    step is the same forward and update), for a machine too loaded to run all 1000.
    ``precision``: radsynth's and the references' network precision (``auto``: bf16 where
    the device runs it faster)."""

    model: str = DEFAULT_FAMILY
    device: str | None = None
    precision: str = "auto"
    batch_size: int = 16
    repeats: int = 4
    fidelity: bool = True
    ddpm_steps: int = 1000
    ddpm_timed_steps: int | None = None
    ddim_steps: int = 50
    compare_steps: tuple[int, ...] = ()
    train_repeats: int = 5
    seed: int = 0
    guidance_interval: tuple[float, float] = (0.4, 1.0)


@dataclass
class Method:
    """One row: a name, its label, step count, ``run(prompts, seeds) -> pixels`` and the
    UNet it runs (whose rows per image are counted)."""

    name: str
    label: str
    steps: int
    run: Callable[[list[str], list[int]], torch.Tensor]
    unet: torch.nn.Module | None = None
    results: dict[str, Any] = field(default_factory=dict)


def unet_rows_per_image(method: Method, prompts: list[str], seeds: list[int]) -> float:
    """UNet batch rows per generated image when ``method`` samples ``prompts``."""
    rows: list[int] = []
    hook = method.unet.register_forward_hook(lambda _m, args, _out: rows.append(args[0].shape[0]))
    try:
        method.run(prompts, seeds)
    finally:
        hook.remove()
    return sum(rows) / len(prompts)


def reference_model(folder: Path, pipeline: GenerationPipeline) -> LatentModel:
    """The checkpoint's networks built and loaded afresh (as MONAI builds them: none of
    radsynth's inference settings), sharing only the frozen text encoder."""
    pretrained = load_pretrained(folder, "ldm")
    modules = {name: module.to(pipeline.device) for name, module in pretrained.modules.items()}
    ldm = pipeline.generator
    return LatentModel(
        unet=modules["unet"],
        vae=modules["vae"],
        schedule=NoiseSchedule(NoiseConfig.from_dict(pretrained.card.section("noise", {}))),
        text_encoder=ldm.text_encoder,
        latent_shape=ldm.vae_config.latent_shape(ldm.image_size),
        latent_scale=ldm.vae_config.latent_scale,
        device=pipeline.device,
    )


def build_methods(
    pipeline: GenerationPipeline,
    compiled: GenerationPipeline,
    flipped: GenerationPipeline,
    ref: LatentModel,
    settings: BenchSettings,
    guided: GenerationPipeline | None = None,
) -> tuple[list[Method], Method]:
    """The interleaved methods, and the DDPM reference (timed once). ``flipped`` is the
    shipped pipeline with its guidance interval flipped (see the module docstring);
    ``guided``, when the shipped LDM samples with a guidance-distilled UNet, the same
    checkpoint without it (two guided rows per image and step)."""
    defaults = pipeline.generator.defaults
    steps, guidance = defaults.steps, defaults.guidance
    bf16 = pipeline.precision == "bf16"
    autocast = torch.autocast(pipeline.device.type, dtype=torch.bfloat16, enabled=bf16)

    def ours(n: int, which: GenerationPipeline = pipeline) -> Callable:
        return lambda prompts, seeds: which.sample(prompts, seeds, steps=n)

    def monai(kind: str, n: int) -> Callable:
        def run(prompts, seeds):
            with autocast:
                return monai_sample(ref, prompts, seeds, monai_scheduler(kind, ref.schedule, n), guidance)

        return run

    def diffusers(prompts, seeds):
        with autocast:
            return diffusers_sample(ref, prompts, seeds, steps, guidance)

    sampler = defaults.sampler
    ours_unet, ref_unet = _network(pipeline, guidance), ref.unet
    methods = [
        Method("radsynth", f"radsynth ({sampler}, shipped)", steps, ours(steps), ours_unet),
        Method(
            "radsynth_compiled",
            f"radsynth ({sampler}, shipped) + torch.compile",
            steps,
            ours(steps, compiled),
        ),
    ]
    if guided is not None:
        methods.append(
            Method(
                "radsynth_guided",
                f"radsynth ({sampler}), guided original (--no-distilled)",
                steps,
                ours(steps, guided),
                guided.generator.denoiser.network,
            )
        )
    interval = flipped.generator.defaults.guidance_interval
    methods.append(
        Method(
            "radsynth_every_step" if interval is None else "radsynth_interval",
            f"radsynth ({sampler}), guidance "
            + ("every step" if interval is None else f"in {interval[0]:g}-{interval[1]:g} only"),
            steps,
            ours(steps, flipped),
            _network(flipped, guidance),
        )
    )
    methods += [
        Method(f"radsynth_{n}", f"radsynth ({sampler})", n, ours(n), ours_unet)
        for n in settings.compare_steps
    ]
    # A flow model's references are each library's flow sampler; the keys keep their roles.
    flow = ref.schedule.config.kind == "rflow"
    labels = {
        "diffusers_dpm": "diffusers loop, " + ("FlowMatchEulerDiscrete" if flow else "DPMSolverMultistep"),
        "monai_ddim": "MONAI LatentDiffusionInferer, " + ("RFlow" if flow else "DDIM"),
        "monai_ddpm": "MONAI LatentDiffusionInferer, " + ("RFlow" if flow else "DDPM"),
    }
    methods += [
        Method("diffusers_dpm", labels["diffusers_dpm"], steps, diffusers, ref_unet),
        Method(
            "monai_ddim",
            labels["monai_ddim"],
            settings.ddim_steps,
            monai("ddim", settings.ddim_steps),
            ref_unet,
        ),
    ]
    ddpm = Method(
        "monai_ddpm",
        labels["monai_ddpm"],
        settings.ddpm_steps,
        monai("ddpm", settings.ddpm_steps),
    )
    return methods, ddpm


def _network(pipeline: GenerationPipeline, guidance: float) -> torch.nn.Module:
    """The UNet ``pipeline`` really runs at ``guidance`` (the distilled one where it applies)."""
    ldm = pipeline.generator
    return ldm.distilled.network if ldm.uses_distilled(guidance) else ldm.denoiser.network


def fidelity_prompts(
    n: int, seed: int, card: Card | None = None
) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """``n`` held-out captions (sampled), every held-out real image, and ``n`` real
    training images (the floor), from the corpus the checkpoint's family learnt from: the
    chest X-ray corpus (built from ``../shared/data`` into the cache when missing; its
    redistributable records, as the family trained on) for an X-ray model, else the demo
    corpus (also without a card)."""
    from radsynth.data.manifest import read_unit_image

    if card is not None and "DX" in card.modalities:
        from radsynth.data.cxr import build_cxr
        from radsynth.text.phi import scrub_phi

        size = int(card.task_info["image"]["size"][0])
        corpus = build_cxr(cache_root() / f"cxr-{size}", scrub=scrub_phi, size=size)
        records = [r for r in corpus.records if r.labels.get("redistributable")]
        held_out_splits: tuple[str, ...] = ("test",)
    else:
        from radsynth.data.demo import build_demo

        corpus = build_demo(size=64)
        records, held_out_splits = corpus.records, ("val", "test")
    manifest = corpus.folder / "manifest.jsonl"
    held_out = [r for r in records if r.split in held_out_splits]
    train = [r for r in records if r.split == "train"]
    rng = random.Random(seed)
    chosen = [rng.choice(held_out).text for _ in range(n)]
    real = [read_unit_image(r.resolve(manifest)) for r in held_out]
    floor = [read_unit_image(r.resolve(manifest)) for r in rng.sample(train, min(n, len(train)))]
    return chosen, real, floor


def unet_throughput(
    pipeline: GenerationPipeline, compiled: GenerationPipeline, ref: LatentModel, batch: int, repeats: int
) -> dict[str, Any]:
    """FLOPs of one guided UNet forward (2 x ``batch``) and its achieved GFLOP/s, with
    radsynth's inference settings (eager and compiled) and as built."""
    from radsynth.sampling.inference import fused_attention

    device = pipeline.device
    x = torch.randn(2 * batch, *ref.latent_shape, device=device)
    t = torch.full((2 * batch,), 500.0, device=device)
    ctx = torch.randn(2 * batch, 48, ref.text_encoder.dim, device=device)
    flops = count_flops(lambda: ref.unet(x, t, ctx))

    def ours(net: torch.nn.Module) -> Callable[[int], None]:
        def forward(_rep: int) -> None:
            with torch.inference_mode(), fused_attention([net]):
                net(x, t, ctx)

        return forward

    def as_built(_rep: int) -> None:
        with torch.no_grad():
            ref.unet(x, t, ctx)

    forwards = {
        "radsynth": ours(pipeline.generator.denoiser.network),
        "radsynth_compiled": ours(compiled.generator.denoiser.network),
        "as_built": as_built,
    }
    for forward in forwards.values():
        forward(0)  # warm-up (and compilation, for this shape)
    timed = interleaved(forwards, repeats, device)
    return {
        "flops_per_forward": flops,
        "batch": 2 * batch,
        **{
            name: {"seconds": round(tm.median, 4), "gflops_per_s": flops / tm.median / 1e9}
            for name, tm in timed.items()
        },
    }


def time_ddpm(
    ref: LatentModel,
    ddpm: Method,
    settings: BenchSettings,
    prompts: list[str],
    seeds: list[int],
    guidance: float,
) -> Timed:
    """The DDPM reference on one batch: all its steps, or the first ``ddpm_timed_steps``
    scaled to all of them (the VAE decode, timed apart, counted once)."""
    device = ref.device
    timed_steps = settings.ddpm_timed_steps
    if timed_steps is None or timed_steps >= ddpm.steps:
        return interleaved({ddpm.name: lambda rep: ddpm.run(prompts, seeds)}, 1, device)[ddpm.name]
    scheduler = monai_scheduler("ddpm", ref.schedule, ddpm.steps)
    scheduler.timesteps = scheduler.timesteps[:timed_steps]  # the inferer walks these
    z = ref.noise(seeds)
    runs = interleaved(
        {
            "partial": lambda rep: monai_sample(ref, prompts, seeds, scheduler, guidance),
            "decode": lambda rep: ref.vae.decode_stage_2_outputs(z),
        },
        1,
        device,
    )
    decode = runs["decode"].median
    total = (runs["partial"].median - decode) * ddpm.steps / timed_steps + decode
    return Timed(seconds=[total], peak_mib=runs["partial"].peak_mib)


def run_benchmark(settings: BenchSettings, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run everything ``settings`` asks for and return the results (JSON-ready)."""
    device = torch.device(settings.device) if settings.device else default_device()
    started, load_start = time.perf_counter(), load_average()
    folder = resolve_checkpoint(settings.model, "ldm")
    options = {"device": device, "batch_size": settings.batch_size, "precision": settings.precision}
    pipeline = load_pipeline(folder, "ldm", **options)
    compiled = load_pipeline(folder, "ldm", **options, compile=True)
    flipped = load_pipeline(folder, "ldm", **options)
    shipped = pipeline.generator.defaults
    flipped.generator.use_guidance_interval(None if shipped.guidance_interval else settings.guidance_interval)
    guided = None
    if pipeline.generator.uses_distilled(shipped.guidance):
        guided = load_pipeline(folder, "ldm", **options, distilled=False)
    ref = reference_model(folder, pipeline)
    methods, ddpm = build_methods(pipeline, compiled, flipped, ref, settings, guided)
    b, n = settings.batch_size, settings.batch_size * settings.repeats
    if settings.fidelity:
        prompts, real, floor = fidelity_prompts(n, settings.seed, read_card(folder))
    else:
        prompt = "PA chest X-ray, pneumonia" if "DX" in read_card(folder).modalities else CT_PROMPT
        prompts, real, floor = [prompt] * n, [], []
    seeds = [settings.seed + i for i in range(n)]

    def batch(rep: int) -> tuple[list[str], list[int]]:
        return prompts[rep * b : (rep + 1) * b], seeds[rep * b : (rep + 1) * b]

    log(f"warm-up (a full batch where compiling); {settings.repeats} interleaved batches of {b}")
    rows_per_image = {m.name: unet_rows_per_image(m, prompts[:2], seeds[:2]) for m in methods if m.unet}
    rows_per_image["radsynth_compiled"] = rows_per_image["radsynth"]  # same settings, compiled
    rows_per_image[ddpm.name] = 2.0 * ddpm.steps  # guided at every step, as MONAI samples
    first = interleaved({"radsynth_compiled": lambda rep: methods[1].run(*batch(0))}, 1, device)
    timed = interleaved(
        {m.name: (lambda rep, m=m: m.run(*batch(rep))) for m in methods}, settings.repeats, device
    )
    log(f"{ddpm.label}-{ddpm.steps}: one batch of {b}")
    timed[ddpm.name] = time_ddpm(ref, ddpm, settings, *batch(0), shipped.guidance)
    load_after_sampling = load_average()

    log("FLOPs and matmul peaks")
    unet = unet_throughput(pipeline, compiled, ref, b, repeats=5)
    per_row = unet["flops_per_forward"] / unet["batch"]  # one UNet row (cond or uncond)
    z = torch.randn(b, *ref.latent_shape, device=device)
    decode = count_flops(lambda: ref.vae.decode_stage_2_outputs(z)) / b
    peaks = {
        "fp32": matmul_peak_gflops(torch.float32, device),
        "bf16": matmul_peak_gflops(torch.bfloat16, device),
    }
    for name in ("radsynth", "radsynth_compiled", "as_built"):
        unet[name]["fraction_of_fp32_peak"] = unet[name]["gflops_per_s"] / peaks["fp32"]
        unet[name]["fraction_of_bf16_peak"] = unet[name]["gflops_per_s"] / peaks["bf16"]

    rows: dict[str, Any] = {}
    for m in [*methods, ddpm]:
        tm = timed[m.name]
        images_per_s = b / tm.median
        flops = rows_per_image[m.name] * per_row + decode
        rows[m.name] = {
            "label": m.label,
            "steps": m.steps,
            "unet_rows_per_image": rows_per_image[m.name],
            "images_per_s": images_per_s,
            "seconds_per_batch": [round(s, 3) for s in tm.seconds],
            "peak_memory_mib": round(tm.peak_mib),
            "gflop_per_image": flops / 1e9,
            "achieved_gflops_per_s": flops * images_per_s / 1e9,
        }
    if settings.fidelity:
        log(f"radiomics features of {len(real)} held-out real slices and {n} images per method")
        rows_frd, floor_frd, differences = fidelity(
            real, floor, {m.name: timed[m.name].outputs for m in methods}, seed=settings.seed
        )
        for name, value in rows_frd.items():
            rows[name].update(frd=value["value"], frd_interval=[value["low"], value["high"]], n_fidelity=n)
            if name in differences:
                rows[name]["radsynth_frd_minus_this"] = differences[name]
        rows[ddpm.name].update(frd=None, n_fidelity=0)
    else:
        floor_frd = None
    rows["radsynth_compiled"]["first_batch_s"] = round(first["radsynth_compiled"].seconds[0], 2)
    rows[ddpm.name]["timed_steps"] = settings.ddpm_timed_steps or ddpm.steps
    goals = FLOW_TARGETS if ref.schedule.config.kind == "rflow" else TARGETS
    ours = rows["radsynth"]["images_per_s"]
    ratios = {name: ours / rows[name]["images_per_s"] for name in goals}
    fast = rows["radsynth_compiled"]["images_per_s"]
    ratios_compiled = {name: fast / rows[name]["images_per_s"] for name in goals}
    result = {
        "settings": asdict(settings) | {"device": str(device), "precision": pipeline.precision},
        "shipped": {
            "sampler": shipped.sampler,
            "steps": shipped.steps,
            "guidance": shipped.guidance,
            "guidance_interval": shipped.guidance_interval,
            "distilled": pipeline.generator.uses_distilled(shipped.guidance),
        },
        "machine": machine(device),
        "load_average": {"start": load_start, "after_sampling": load_after_sampling},
        "matmul_peak_gflops": peaks,
        "unet": unet,
        "vae_decode_gflop_per_image": decode / 1e9,
        "methods": rows,
        "ratios": ratios,
        "ratios_compiled": ratios_compiled,
        "compile": compile_cost(rows, b),
        "targets": {
            name: {
                "speedup_target": target,
                "speedup": ratios[name],
                "speedup_compiled": ratios_compiled[name],
                "fidelity_equal_or_better": _no_worse(rows, name),
                "speed_met": ratios[name] >= target,
                "speed_met_compiled": ratios_compiled[name] >= target,
            }
            for name, target in goals.items()
        },
        "fidelity_floor_real_train_vs_held_out": floor_frd,
    }
    if settings.train_repeats and ref.schedule.config.kind == "rflow":
        result["training"] = {"skipped": "the training comparison is written for VP (v-prediction) models"}
    elif settings.train_repeats:
        log(f"training: {settings.train_repeats} interleaved steps of batch {b} each")
        card = read_card(folder)
        vae_folder = resolve_checkpoint(settings.model, "vae")
        result["training"] = training_benchmark(card, vae_folder, b, settings.train_repeats, device)
    result["load_average"]["end"] = load_average()
    result["wall_s"] = round(time.perf_counter() - started, 1)
    return result


def fidelity(
    real: list[np.ndarray],
    floor: list[np.ndarray],
    outputs: dict[str, list[torch.Tensor]],
    n_boot: int = 200,
    seed: int = 0,
) -> tuple[dict[str, dict[str, float]], float, dict[str, dict[str, float]]]:
    """FRD of each method's images against ``real``, with a 95 % bootstrap interval; the FRD
    of the real training sample (the floor); and for every other method the paired
    difference radsynth minus it (the methods draw the same prompts and seeds, so image i is
    resampled for every method at once, and the real set beside it), which is what an "equal
    or better fidelity" claim rests on."""
    from radsynth.evaluate.features import radiomics_features
    from radsynth.evaluate.frechet import frechet_radiomics_distance
    from radsynth.evaluate.stats import interval

    real_features, _ = radiomics_features(real)
    floor_features, _ = radiomics_features(floor)
    features = {}
    for name, batches in outputs.items():
        images = [im[0] for im in torch.cat(batches).float().cpu().numpy()]  # (H, W) each
        features[name] = radiomics_features(images)[0]
    point = {name: frechet_radiomics_distance(real_features, f) for name, f in features.items()}
    rng = np.random.default_rng(seed)
    n = len(next(iter(features.values())))
    draws: dict[str, list[float]] = {name: [] for name in features}
    for _ in range(n_boot):
        index = rng.integers(0, n, n)  # the same images for every method
        reals = real_features[rng.integers(0, len(real_features), len(real_features))]
        for name, f in features.items():
            draws[name].append(frechet_radiomics_distance(reals, f[index]))
    scores = {name: interval(point[name], draws[name]) for name in features}
    differences = {
        name: interval(
            point["radsynth"] - point[name],
            [a - b for a, b in zip(draws["radsynth"], draws[name], strict=True)],
        )
        for name in features
        if name != "radsynth"
    }
    return scores, frechet_radiomics_distance(real_features, floor_features), differences


def compile_cost(rows: dict[str, Any], batch: int) -> dict[str, float]:
    """What compiling costs once (its first batch over the eager first batch) and after
    how many images its faster batches have paid that back."""
    eager, compiled = rows["radsynth"], rows["radsynth_compiled"]
    overhead = compiled["first_batch_s"] - batch / eager["images_per_s"]
    saved_per_image = 1 / eager["images_per_s"] - 1 / compiled["images_per_s"]
    return {
        "overhead_s": round(overhead, 1),
        "break_even_images": round(overhead / saved_per_image) if saved_per_image > 0 else None,
    }


def _no_worse(rows: dict[str, Any], reference: str) -> bool | None:
    """Whether radsynth's FRD is not detectably worse than the reference's: the 95 % interval
    of the paired difference (radsynth minus reference) reaches 0 or below (None: not
    measured)."""
    difference = rows[reference].get("radsynth_frd_minus_this")
    return None if difference is None else difference["low"] <= 0


def machine(device: torch.device) -> dict[str, Any]:
    """What the numbers were measured on."""
    info: dict[str, Any] = {
        "device": str(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "native_bf16_cpu": cpu_has_fast_bf16(),
        "python": platform.python_version(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    try:
        text = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(
            line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name")
        )
    except (OSError, StopIteration):
        info["cpu"] = platform.processor() or platform.machine()
    return info
