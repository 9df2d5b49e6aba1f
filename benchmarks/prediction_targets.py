"""Which diffusion target samples best in few steps: epsilon, v, or rectified flow?

    .venv/bin/python benchmarks/prediction_targets.py [--steps 400]

Trains three latent diffusion models that differ only in the noising process / target
(same VAE, UNet, data, seed and step budget), then samples each at 10 and 25 solver steps
(DPM-Solver++ 2M for VP, Euler for rectified flow) from held-out captions and measures
the Fréchet distance in the attribute classifier's feature space against the held-out
real slices, plus modality / anatomy adherence. Writes
benchmarks/results/prediction_targets.json.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from radsynth.bench.record import run_record
from radsynth.data.demo import build_demo
from radsynth.data.manifest import read_unit_image
from radsynth.evaluate import DomainReader, adherence, frechet_distance
from radsynth.generate import load_pipeline
from radsynth.models.registry import shipped
from radsynth.train import load_config, train

ROOT = Path(__file__).resolve().parent
VARIANTS = {
    "epsilon": {"kind": "vp", "prediction": "epsilon"},
    "v": {"kind": "vp", "prediction": "v"},
    "rflow": {"kind": "rflow"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400, help="training steps per variant")
    parser.add_argument("--runs", type=Path, default=Path("runs/prediction-targets"))
    parser.add_argument("--n-eval", type=int, default=96, help="held-out slices to compare against")
    args = parser.parse_args()
    console = Console()
    corpus = build_demo(size=64)
    held_out = [r for r in corpus.records if r.split in ("val", "test")]
    held_out = random.Random(0).sample(held_out, min(args.n_eval, len(held_out)))
    manifest = corpus.folder / "manifest.jsonl"
    real = [read_unit_image(r.resolve(manifest)) for r in held_out]
    reader = DomainReader(shipped("classifier"))
    real_features = reader.features(real)
    prompts = sorted(Counter(r.text for r in held_out).items())
    base = load_config(ROOT.parent / "configs" / "ldm-demo-64.yaml")
    results = {"settings": run_record(), "training_steps": args.steps, "variants": {}}
    for name, noise in VARIANTS.items():
        options = {**base.options, "vae": str(shipped("vae")), "noise": noise}
        options["sampling"] = {
            "steps": 25,
            "guidance": 4.0,
            "sampler": "euler" if noise["kind"] == "rflow" else "dpmpp_2m",
        }
        recipe = base.with_overrides(
            steps=args.steps, out=str(args.runs / name), options=options, checkpoint_every=args.steps
        )
        start = time.perf_counter()
        folder = train(recipe)
        train_s = time.perf_counter() - start
        pipeline = load_pipeline(folder)
        row = {"train_seconds": round(train_s, 1)}
        for steps in (10, 25):
            images, texts = [], []
            for k, (prompt, count) in enumerate(prompts):
                images += [im.array for im in pipeline.generate(prompt, n=count, seed=1000 * k, steps=steps)]
                texts += [prompt] * count
            reads = adherence(texts, reader.attributes(images))
            row[f"steps_{steps}"] = {
                "fd_domain": frechet_distance(real_features, reader.features(images)),
                "modality_acc": reads["modality"]["accuracy"],
                "anatomy_acc": reads["anatomy"]["accuracy"],
            }
        results["variants"][name] = row
        console.print(f"{name}: {row}")
    table = Table(
        "target",
        "FD@10",
        "FD@25",
        "anatomy@10",
        "anatomy@25",
        title=f"Diffusion targets, {args.steps} training steps each",
    )
    for name, row in results["variants"].items():
        table.add_row(
            name,
            f"{row['steps_10']['fd_domain']:.2f}",
            f"{row['steps_25']['fd_domain']:.2f}",
            f"{row['steps_10']['anatomy_acc']:.1%}",
            f"{row['steps_25']['anatomy_acc']:.1%}",
        )
    console.print(table)
    out = ROOT / "results" / "prediction_targets.json"
    out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    console.print(f"wrote {out}")


if __name__ == "__main__":
    main()
