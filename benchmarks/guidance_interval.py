"""Which steps need classifier-free guidance? Quality and cost of guidance intervals.

    .venv/bin/python benchmarks/guidance_interval.py [--n 160]

Guidance doubles the UNet batch. Kynkäänniemi et al. (2024) found it helps only in a
middle band of noise levels; this measures it on the shipped LDM with its shipped sampler
and step count: for each interval (timestep fractions t / T that are guided), the same
held-out captions and seeds are sampled and scored by radiomics Fréchet distance to the
held-out real slices, text adherence (the attribute classifier reads modality / anatomy /
finding), and the UNet forwards per image (relative cost; guided steps count twice).
The guided rows use the original LDM (``distilled=False``); the ``distilled (shipped)`` row
samples the guidance-distilled UNet at the shipped scale (one forward per step, no interval).
``--seeds 0,1000,2000`` repeats everything per seed (prompt draw and first image seed).
Writes ``benchmarks/results/guidance_interval.json`` (``--out``; the distillation table's
``--only "every step,distilled (shipped)" --out benchmarks/results/guidance_distilled.json``)
with the rows per seed and the command, commit, CPU and weights hashes; the README's tables
are rendered from those files (``make figures``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from radsynth.bench.record import run_record
from radsynth.bench.sampling import fidelity_prompts
from radsynth.evaluate.adherence import adherence
from radsynth.evaluate.features import DomainReader, radiomics_features
from radsynth.evaluate.frechet import frechet_radiomics_distance
from radsynth.generate.models import load_pipeline, resolve_checkpoint
from radsynth.models.registry import shipped

RESULTS = Path(__file__).resolve().parent / "results" / "guidance_interval.json"
INTERVALS: dict[str, tuple[float, float] | str | None] = {
    "every step": None,
    "distilled (shipped)": "distilled",
    "never (conditional only)": "never",
    "0.2-1.0": (0.2, 1.0),
    "0.0-0.7": (0.0, 0.7),
    "0.2-0.8": (0.2, 0.8),
    "0.3-0.9": (0.3, 0.9),
    "0.4-1.0": (0.4, 1.0),
    "0.5-1.0": (0.5, 1.0),
    "0.3-0.7": (0.3, 0.7),
}


def guided_steps(pipeline, interval) -> int:
    """How many of the shipped sampler's steps fall inside ``interval``."""
    from diffusers import DPMSolverMultistepScheduler

    scheduler = DPMSolverMultistepScheduler(
        **pipeline.generator.denoiser.schedule.diffusers_config(), timestep_spacing="trailing"
    )
    scheduler.set_timesteps(pipeline.generator.defaults.steps)
    total = pipeline.generator.denoiser.schedule.num_train_timesteps
    if interval is None:
        return len(scheduler.timesteps)
    return sum(interval[0] <= float(t) / total <= interval[1] for t in scheduler.timesteps)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=160)
    parser.add_argument("--seeds", default="0", help="comma-separated: prompt draw and first image seed")
    parser.add_argument("--only", default="", help="comma-separated row names (default: all)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    chosen = {k: v for k, v in INTERVALS.items() if not args.only or k in args.only.split(",")}
    folder = resolve_checkpoint("demo-ct-mr-64", "ldm")
    pipeline = load_pipeline(folder, "ldm", batch_size=16, fast_attention=True, distilled=False)
    distilled = load_pipeline(folder, "ldm", batch_size=16, fast_attention=True)
    reader = DomainReader(shipped("classifier"))
    seeds = {}
    for seed in (int(x) for x in args.seeds.split(",")):
        seeds[str(seed)] = measure(pipeline, distilled, reader, chosen, args.n, seed)
    result = {
        "n": args.n,
        "sampler": pipeline.generator.defaults.sampler,
        "steps": pipeline.generator.defaults.steps,
        "seeds": seeds,
        **run_record([folder, shipped("classifier")]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    table = Table(title=f"guidance intervals, {result['sampler']} {result['steps']} steps, n = {args.n}")
    for col in ("seed", "interval", "guided steps", "UNet cost", "FRD", "modality", "anatomy", "finding"):
        table.add_column(col)
    for seed, rows in seeds.items():
        for name, r in rows.items():
            a = r["adherence"]
            table.add_row(
                seed,
                name,
                str(r["guided_steps"]),
                f"{r['relative_cost']:.2f}",
                f"{r['frd']:.0f}",
                *(f"{a[k]:.2f}" if a.get(k) is not None else "-" for k in ("modality", "anatomy", "finding")),
            )
    Console().print(table)


def measure(pipeline, distilled, reader, chosen: dict, n: int, seed: int) -> dict:
    """Every chosen row for one seed: the same held-out captions and image seeds."""
    prompts, real, _ = fidelity_prompts(n, seed)
    seeds = [seed + i for i in range(n)]
    real_features, _ = radiomics_features(real)
    steps = pipeline.generator.defaults.steps
    rows = {}
    for name, interval in chosen.items():
        never, student = interval == "never", interval == "distilled"
        scale = 1.0 if never else None  # guidance 1 runs the conditional half alone
        which = distilled if student else pipeline
        if not student:
            pipeline.generator.use_guidance_interval(None if never else interval)
        started = time.perf_counter()
        images = torch.cat(
            [which.sample(prompts[i : i + 16], seeds[i : i + 16], guidance=scale) for i in range(0, n, 16)]
        )
        seconds = time.perf_counter() - started
        slices = [im[0] for im in images.float().numpy()]
        features, _ = radiomics_features(slices)
        read = adherence(prompts, reader.attributes(slices))
        guided = 0 if never or student else guided_steps(pipeline, interval)
        forwards = steps if student else steps + guided
        rows[name] = {
            "interval": interval,
            "guided_steps": steps if student else guided,
            "steps": steps,
            "unet_forwards_per_image": forwards,
            "relative_cost": forwards / (2 * steps),
            "frd": frechet_radiomics_distance(real_features, features),
            "adherence": {k: v["accuracy"] for k, v in read.items()},
            "seconds": round(seconds, 1),
        }
        print(seed, name, json.dumps(rows[name]), flush=True)
    return rows


if __name__ == "__main__":
    main()
