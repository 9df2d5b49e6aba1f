"""A family's default step count, chosen on validation patients (issue 18; issue 24: defaults
are chosen on validation data, the test split gives only the final figure).

    .venv/bin/python benchmarks/steps.py [--weights cxr-128|demo-ct-mr-64] [--steps 6,8,10,15,25]
                                         [--n 160] [--apply]

For each step count the family's shipped LDM (as ``generate`` samples it: the
guidance-distilled UNet where the card has one) draws ``--n`` images, ``--per-prompt`` per
caption of validation records drawn at random, in fp32 (the same images on every CPU).
Scored against every validation image of its corpus (the chest X-ray corpus, built with
``radsynth data cxr`` when missing; the demo corpus): FID and KID in the family's encoder
space (95 % bootstrap intervals), the family's reader reading back what the records state
(chest X-ray: view, age group, finding; demo: modality, anatomy), and each step count's FID
gap to the best with a paired bootstrap interval (image i has the same caption and seed at
every step count). Rule: the fewest steps whose FID is within ``--fid-tolerance`` (5 %) of
the best and whose mean read-back is within ``--adherence-slack`` (2 points) of the best.
``--apply`` writes the choice into the shipped card (``task_info.sampling.steps``; how, in
``task_info.sampling_steps_chosen_by``).

Prints a table and writes ``benchmarks/results/steps_<family>.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from radsynth.bench.record import run_record
from radsynth.data.manifest import load_manifest
from radsynth.evaluate import DomainReader, adherence_to, load_set
from radsynth.evaluate.fidelity import kid
from radsynth.evaluate.frechet import frechet_distance
from radsynth.evaluate.report import json_ready
from radsynth.evaluate.stats import bootstrap_ci, interval
from radsynth.io.atomic import atomic_path
from radsynth.models.registry import checkpoint_folder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cxr import _corpus, asked_of  # noqa: E402
from figures import STEPS_COLUMNS, steps_cells  # noqa: E402  (the README's cells)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
ATTRIBUTES = {  # what the family's reader reads back (the chest X-ray issue's adherence targets)
    "cxr-128": ("plane", "age_group", "finding"),
    "demo-ct-mr-64": ("modality", "anatomy"),
}
N_BOOT = 200


def measure(pipeline, steps: int, records, per_prompt: int, seed: int, models, reference, attributes):
    """One step count's row (scored against the validation reference) and its images'
    encoder features."""
    start = time.perf_counter()
    images = np.stack(
        [
            im.array
            for k, r in enumerate(records)  # caption k: seeds seed + 1000 k + i, as benchmarks/cxr.py
            for im in pipeline.generate(r.text, n=per_prompt, seed=seed + 1000 * k, steps=steps)
        ]
    )
    seconds = time.perf_counter() - start
    features = models["encoder"].features(images)
    asked = [a for a in asked_of(records, attributes) for _ in range(per_prompt)]
    reads = models["reader"].attributes(images)
    read_back = adherence_to(asked, {a: reads[a] for a in attributes})
    row = {
        "steps": steps,
        "n": len(images),
        "fid_domain": bootstrap_ci(frechet_distance, [reference, features], n_boot=N_BOOT, seed=seed),
        "kid_domain": bootstrap_ci(kid, [reference, features], n_boot=N_BOOT, seed=seed),
        "read_back": {a: read_back[a]["accuracy"] for a in attributes},
        "read_back_mean": float(np.mean([read_back[a]["accuracy"] for a in attributes])),
        "seconds": round(seconds, 1),
    }
    return row, features


def paired_gaps(reference: np.ndarray, features: dict[int, np.ndarray], seed: int) -> dict[int, dict]:
    """For each step count, FID minus the best step count's FID with a 95 % paired bootstrap
    interval: image i has the same caption and seed at every step count, so one resample of
    the images (and one of the real set) serves every row; the step counts' own intervals
    overlap almost entirely and cannot order them."""
    point = {s: frechet_distance(reference, f) for s, f in features.items()}
    best = min(point, key=point.get)
    rng = np.random.default_rng(seed)
    n = len(features[best])
    draws: dict[int, list[float]] = {s: [] for s in features}
    for _ in range(N_BOOT):
        index, real = rng.integers(0, n, n), reference[rng.integers(0, len(reference), len(reference))]
        base = frechet_distance(real, features[best][index])
        for s, f in features.items():
            draws[s].append(frechet_distance(real, f[index]) - base)
    return {s: interval(point[s] - point[best], draws[s]) for s in features}


def choose(rows: list[dict[str, Any]], tolerance: float, slack: float) -> int:
    """The fewest steps whose FID is within ``tolerance`` (relative) of the best step count's
    and whose mean read-back is within ``slack`` of the best. More steps keep improving FID
    by a little that the paired interval resolves (a strict "not detectably worse" would
    always pick the most steps): the tolerance is the stated price of speed."""
    best_fid = min(r["fid_domain"]["value"] for r in rows)
    best_read = max(r["read_back_mean"] for r in rows)
    fine = [
        r["steps"]
        for r in rows
        if r["fid_minus_best"]["value"] <= tolerance * best_fid and r["read_back_mean"] >= best_read - slack
    ]
    return min(fine)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="cxr-128", choices=sorted(ATTRIBUTES))
    parser.add_argument("--manifest", type=Path, default=Path("runs/cxr-128/manifest.jsonl"), help="cxr only")
    parser.add_argument("--steps", default="6,8,10,15,25")
    parser.add_argument("--n", type=int, default=160, help="images per step count")
    parser.add_argument("--per-prompt", type=int, default=4)
    parser.add_argument("--fid-tolerance", type=float, default=0.05, help="relative to the best FID")
    parser.add_argument("--adherence-slack", type=float, default=0.02)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--apply", action="store_true", help="write the chosen steps into the shipped card")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/steps_<family>.json")
    args = parser.parse_args(argv)
    from radsynth.generate import load_pipeline

    console = Console(width=160)
    start = time.perf_counter()
    torch.manual_seed(args.seed)
    family, attributes = args.weights, ATTRIBUTES[args.weights]
    if family == "cxr-128":
        manifest = _corpus(args.manifest, console)
    else:
        from radsynth.data.demo import build_demo

        manifest = build_demo(size=64).folder / "manifest.jsonl"
    val = load_set(manifest, "val", ("val",))
    records = [r for r in load_manifest(manifest) if r.split == "val"]
    rng = np.random.default_rng(args.seed)
    chosen = [records[i] for i in np.sort(rng.permutation(len(records))[: args.n // args.per_prompt])]
    models = {
        "encoder": DomainReader(checkpoint_folder(family, "encoder")),
        "reader": DomainReader(checkpoint_folder(family, "classifier")),
    }
    reference = models["encoder"].features(val.images)
    folder = checkpoint_folder(family, "ldm")
    pipeline = load_pipeline(folder, "ldm", device="cpu", precision="fp32")
    rows, features = [], {}
    for steps in (int(s) for s in args.steps.split(",")):
        row, features[steps] = measure(
            pipeline, steps, chosen, args.per_prompt, args.seed, models, reference, attributes
        )
        rows.append(row)
        console.print(f"{steps} steps: FID {rows[-1]['fid_domain']['value']:.3f}, "
                      f"read back {rows[-1]['read_back_mean']:.3f}")  # fmt: skip
    gaps = paired_gaps(reference, features, args.seed)
    for row in rows:
        row["fid_minus_best"] = gaps[row["steps"]]
    choice = choose(rows, args.fid_tolerance, args.adherence_slack)
    results = json_ready(
        {
            "rows": rows,
            "chosen_steps": choice,
            "family": family,
            "attributes": list(attributes),
            "validation_images": len(val),
            "distilled": pipeline.generator.uses_distilled(pipeline.generator.defaults.guidance),
            "settings": {
                "n": args.n,
                "per_prompt": args.per_prompt,
                "fid_tolerance": args.fid_tolerance,
                "adherence_slack": args.adherence_slack,
                "seed": args.seed,
                "precision": "fp32",
                "model_id": pipeline.model_id,
                **run_record([folder], argv),
                "seconds": round(time.perf_counter() - start, 1),
            },
        }
    )
    out = args.out or RESULTS / f"steps_{family}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    console.print(table(results))
    if args.apply:
        card_path = folder / "card.json"
        card = json.loads(card_path.read_text(encoding="utf-8"))
        card["task_info"]["sampling"]["steps"] = choice
        card["task_info"]["sampling_steps_chosen_by"] = results["settings"]["command"]
        with atomic_path(card_path) as tmp:
            tmp.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        console.print(f"wrote steps {choice} into {card_path}")


def table(results: dict[str, Any]) -> Table:
    title = f"{results['family']} LDM on validation patients: {results['chosen_steps']} steps chosen"
    out = Table(*STEPS_COLUMNS, title=title)
    for cells in steps_cells(results):
        out.add_row(*cells)
    return out


if __name__ == "__main__":
    main()
