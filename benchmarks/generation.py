"""Quality and speed of the shipped generators (LDM, GAN, VAE) on the demo corpus.

    .venv/bin/python benchmarks/generation.py [--quick]

For each model:
- text adherence: 200 images from prompts drawn evenly over the corpus's (modality,
  anatomy) groups; the attribute classifier trained on real slices only reads modality,
  anatomy and finding back (accuracy per attribute, confusion matrices in the JSON);
- fidelity: one image per held-out (val + test) real slice, from that slice's caption;
  Fréchet Radiomics Distance (pyradiomics, z-scored against the real set) and Fréchet
  distance in the classifier's feature space, against the held-out real slices. The same
  distances between real training slices and the held-out slices are the floor;
- speed: images/s for a batch of 16 at the shipped settings, float32 and bfloat16.

Prints a table and writes benchmarks/results/generation.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from radsynth.bench.record import run_record
from radsynth.data.demo import build_demo
from radsynth.data.manifest import read_unit_image
from radsynth.evaluate import DomainReader, adherence, frechet_distance, frechet_radiomics_distance
from radsynth.evaluate.features import radiomics_features
from radsynth.generate import load_pipeline
from radsynth.models.precision import cpu_has_fast_bf16
from radsynth.models.registry import checkpoint_folder, shipped

sys.path.insert(0, str(Path(__file__).resolve().parent))
from figures import GENERATION_HEADER, generation_cells  # noqa: E402  (the README's cells)

RESULTS = Path(__file__).resolve().parent / "results" / "generation.json"
KINDS = ("ldm", "gan", "vae")


def adherence_prompts(records, n_prompts: int, per_prompt: int, seed: int) -> list[tuple[str, int]]:
    """``n_prompts`` distinct captions spread evenly over (modality, anatomy) groups."""
    rng = random.Random(seed)
    groups = defaultdict(set)
    for r in records:
        groups[(r.modality, r.anatomy)].add(r.text)
    keys = sorted(groups)
    chosen = []
    for i in range(n_prompts):
        pool = sorted(groups[keys[i % len(keys)]])
        chosen.append((rng.choice(pool), per_prompt))
    return chosen


def generate_all(pipeline, prompts: list[tuple[str, int]], seed: int, steps=None) -> tuple[list, list[str]]:
    images, texts = [], []
    for k, (prompt, count) in enumerate(prompts):
        out = pipeline.generate(prompt, n=count, seed=seed + 1000 * k, steps=steps)
        images += [im.array for im in out]
        texts += [prompt] * count
    return images, texts


def sampling_facts(pipeline) -> dict:
    """What sampled the images: the LDM's sampler, steps, guidance and whether the
    guidance-distilled UNet ran; the GAN and VAE draw in one forward."""
    if pipeline.kind != "ldm":
        return {"forwards": 1}
    defaults = pipeline.generator.defaults
    return {
        "sampler": defaults.sampler,
        "steps": defaults.steps,
        "guidance": defaults.guidance,
        "guidance_interval": defaults.guidance_interval,
        "distilled": pipeline.generator.uses_distilled(defaults.guidance),
    }


def speed(kind: str, precision: str, n: int, repeats: int = 2) -> float:
    pipeline = load_pipeline("demo-ct-mr-64", kind, precision=precision)
    prompt = "axial chest CT, lung window, tumour in the right lung"
    pipeline.generate(prompt, n=min(n, 2), seed=0)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        pipeline.generate(prompt, n=n, seed=0)
        best = min(best, time.perf_counter() - start)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 adherence images, 64 fidelity slices")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    console = Console()
    torch.manual_seed(args.seed)

    corpus = build_demo(size=64)
    records = corpus.records
    held_out = [r for r in records if r.split in ("val", "test")]
    train_real = [r for r in records if r.split == "train"]
    rng = random.Random(args.seed)
    if args.quick:
        held_out = rng.sample(held_out, 64)
    train_sample = rng.sample(train_real, min(len(train_real), len(held_out)))
    manifest = corpus.folder / "manifest.jsonl"
    real = [read_unit_image(r.resolve(manifest)) for r in held_out]
    reference = [read_unit_image(r.resolve(manifest)) for r in train_sample]

    reader = DomainReader(shipped("classifier"))
    console.print(f"real held-out slices: {len(real)}; radiomics features ...")
    real_rad, _ = radiomics_features(real)
    ref_rad, _ = radiomics_features(reference)
    real_dom, ref_dom = reader.features(real), reader.features(reference)
    real_reads = reader.attributes(real)
    results = {
        "real_train_vs_held_out": {
            "frd": frechet_radiomics_distance(real_rad, ref_rad),
            "fd_domain": frechet_distance(real_dom, ref_dom),
            "classifier_on_real_held_out": adherence([r.text for r in held_out], real_reads),
        },
        "models": {},
    }
    n_prompts, per_prompt = (8, 5) if args.quick else (40, 5)
    prompts = adherence_prompts(records, n_prompts, per_prompt, args.seed)
    fidelity_prompts = sorted(Counter(r.text for r in held_out).items())
    for kind in KINDS:
        pipeline = load_pipeline("demo-ct-mr-64", kind, precision="fp32")
        start = time.perf_counter()
        images, texts = generate_all(pipeline, prompts, args.seed)
        reads = reader.attributes(images)
        fid_images, _ = generate_all(pipeline, fidelity_prompts, args.seed + 7)
        gen_seconds = time.perf_counter() - start
        rad, _ = radiomics_features(fid_images)
        results["models"][kind] = {
            "model_id": pipeline.model_id,
            "sampling": sampling_facts(pipeline),
            "adherence": adherence(texts, reads),
            "frd": frechet_radiomics_distance(real_rad, rad),
            "fd_domain": frechet_distance(real_dom, reader.features(fid_images)),
            "n_adherence": len(images),
            "n_fidelity": len(fid_images),
            "generation_seconds": round(gen_seconds, 1),
        }
        console.print(f"{kind}: done in {gen_seconds:.0f} s")
    for kind in KINDS:
        fp32 = speed(kind, "fp32", n=16)
        # without native bf16 (AVX-512 BF16 / AMX) PyTorch emulates it, ~20x slower: 4 images do
        bf16 = speed(kind, "bf16", n=16 if cpu_has_fast_bf16() else 4, repeats=1)
        results["models"][kind]["images_per_s"] = {"fp32": round(fp32, 2), "bf16": round(bf16, 2)}
    results["settings"] = {
        "quick": args.quick,
        "seed": args.seed,
        "sampler": "each card's defaults, as `radsynth generate` samples (models.<kind>.sampling)",
        "adherence_prompts": n_prompts,
        "per_prompt": per_prompt,
        "quality_precision": "fp32",
        **run_record([checkpoint_folder("demo-ct-mr-64", kind) for kind in KINDS]),
    }
    table = Table(*GENERATION_HEADER, title="Generators on the demo corpus (64x64)")
    for cells in generation_cells(results):
        table.add_row(*cells)
    console.print(table)
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        console.print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
