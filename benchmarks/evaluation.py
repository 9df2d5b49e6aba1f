"""The full evaluation (``radsynth.evaluate``) of the shipped LDM, GAN and VAE against the
held-out demo split.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/evaluation.py [--quick]

Sets: real = the held-out real slices (val + test subjects, 291); train = the real
training slices (811) the generators were trained on; synthetic = per model, 12 images
for each of the 10 distinct chest CT training captions that state a finding (4 with a
tumour, 6 without: the utility task's material) and 4 for each of 40 other training
captions (10 with a lesion, 30 of the rest; the corpus has 57 distinct training
captions), 280 images, seeds fixed. The "real train" row puts 280 real training slices
in the synthetic seat: what a perfect copy of the training distribution scores (and, by
construction, 100 % copies).

Utility task: tumour present vs absent on chest CT (training: lung1, 6 of 96 slices with
a tumour; test: lung2, 22 of 122), 120 steps x 32 images per arm. Across all slices the
task is confounded (22 of the 25 held-out positives are lung2 CT, most negatives are brain
MR), so it is restricted to chest slices. The arms without synthetic images (real,
shuffled labels, transfer:real) are trained once and shared by the three rows.
Membership inference: 200 training vs 200 held-out slices.

Prints a table, writes benchmarks/results/evaluation.json and one HTML report per model
under out/evaluation/<model>/.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from radsynth.bench.record import run_record
from radsynth.data.demo import build_demo
from radsynth.evaluate.features import DomainReader, radiomics_features
from radsynth.evaluate.fidelity import fidelity
from radsynth.evaluate.report import json_ready, write_report
from radsynth.evaluate.run import EvaluationOptions, Models, evaluate
from radsynth.evaluate.sets import load_set, synthetic_set
from radsynth.evaluate.utility import ARMS, TRANSFER_ARMS, UtilitySettings
from radsynth.generate import load_pipeline
from radsynth.models.registry import checkpoint_folder, shipped

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generation import generate_all, sampling_facts  # noqa: E402  (the generation benchmark's loop)

RESULTS = Path(__file__).resolve().parent / "results" / "evaluation.json"
REPORTS = Path("out/evaluation")
KINDS = ("ldm", "gan", "vae")
FAMILY = "demo-ct-mr-64"
QUOTAS = {"other_present": 10, "other": 30}  # and every chest caption
QUICK_QUOTAS = {"other_present": 1, "other": 2}
UTILITY_WITHIN = {"anatomy": "chest"}
SHARED_ARMS = ("real", "shuffled_labels", "transfer:real")


def training_prompts(train, quotas: dict[str, int], per_prompt: int, seed: int) -> list[tuple[str, int]]:
    """``(caption, images)`` for distinct training captions: every chest caption (with and
    without a tumour, ``3 * per_prompt`` images each: the utility task's material), then
    up to ``quotas`` captions of the other groups, ``per_prompt`` images each."""
    rng = random.Random(seed)
    groups: dict[str, set[str]] = {"chest": set(), "other_present": set(), "other": set()}
    for text, anatomy, finding in zip(
        train.texts, train.attributes["anatomy"], train.attributes["finding"], strict=True
    ):
        if anatomy == "chest" and finding in ("present", "absent"):
            groups["chest"].add(text)
        else:
            groups["other_present" if finding == "present" else "other"].add(text)
    chosen = [(text, 3 * per_prompt) for text in sorted(groups["chest"])]
    for name, n in quotas.items():
        pool = sorted(groups[name])
        chosen += [(text, per_prompt) for text in rng.sample(pool, min(n, len(pool)))]
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="12 prompts x 2, 40 utility steps, no file written"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--utility-steps", type=int, default=120)
    args = parser.parse_args()
    console = Console(width=200)
    torch.manual_seed(args.seed)
    manifest = build_demo(size=64).folder / "manifest.jsonl"
    real = load_set(manifest, "real", ("val", "test"))
    train = load_set(manifest, "train", ("train",))
    per_prompt = 2 if args.quick else 4
    quotas = QUICK_QUOTAS if args.quick else QUOTAS
    prompts = training_prompts(train, quotas, per_prompt, args.seed)
    steps = 40 if args.quick else args.utility_steps
    reader = DomainReader(shipped("classifier"))
    encoder = DomainReader(shipped("encoder"))
    real_radiomics, _ = radiomics_features(list(real.images))
    n_synthetic = sum(n for _, n in prompts)
    reference = reference_row(real, train, encoder, real_radiomics, n_synthetic, args.seed)
    results = {"models": {}, "real_train": reference, "settings": settings(args, prompts, per_prompt, steps)}
    shared: dict = {}  # the arms without synthetic images, trained once
    for kind in KINDS:
        start = time.perf_counter()
        # eager networks: the same pipeline is the membership attack (encoder, training loss)
        pipeline = load_pipeline("demo-ct-mr-64", kind, device="cpu", precision="fp32", exported=False)
        images, texts = generate_all(pipeline, prompts, args.seed)
        models = Models(reader, encoder, pipeline if kind != "gan" else None)
        evaluation = evaluate(
            real,
            train=train,
            synthetic=synthetic_set(kind, images, texts),
            models=models,
            options=options_for(shared, steps, args.seed),
            progress=_progress(console, kind),
            real_radiomics=real_radiomics,
        )
        share_arms(evaluation.metrics, shared)
        evaluation.metrics["seconds"] = round(time.perf_counter() - start, 1)
        if not args.quick:
            write_report(evaluation, REPORTS / kind)
        evaluation.metrics["sampling"] = sampling_facts(pipeline)
        results["models"][kind] = evaluation.metrics
        console.print(f"{kind}: done in {evaluation.metrics['seconds']:.0f} s")
        if not args.quick:
            save(results)
    console.print(table(results))
    console.print(utility_table(results))
    if not args.quick:
        console.print(f"wrote {RESULTS}")


def save(results: dict) -> None:
    """Write what is measured so far (after every model, so a late failure loses nothing)."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(_slim(json_ready(results)), indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


def settings(args, prompts: list[tuple[str, int]], per_prompt: int, steps: int) -> dict:
    return {
        "quick": args.quick,
        "seed": args.seed,
        "prompts": len(prompts),
        "images": sum(n for _, n in prompts),
        "per_prompt": per_prompt,
        "utility_steps": steps,
        "quality_precision": "fp32",
        **run_record(
            [checkpoint_folder("demo-ct-mr-64", kind) for kind in (*KINDS, "classifier", "encoder")]
        ),
    }


def options_for(shared: dict, steps: int, seed: int) -> EvaluationOptions:
    """All utility arms for the first model; only those with synthetic images after it."""
    with_synthetic = ("synthetic", "real+synthetic")
    arms, transfer = (with_synthetic, with_synthetic) if shared else (ARMS, TRANSFER_ARMS)
    utility = UtilitySettings(
        within=UTILITY_WITHIN, steps=steps, seed=seed, arms=arms, transfer_arms=transfer
    )
    return EvaluationOptions(seed=seed, max_membership=200, utility=utility)


def share_arms(metrics: dict, shared: dict) -> None:
    """Remember the first model's arms without synthetic images; give them to every model."""
    arms = metrics["utility"].setdefault("arms", {})
    shared.update({k: v for k, v in arms.items() if k in SHARED_ARMS})
    arms.update(shared)


def reference_row(real, train, encoder, real_radiomics, n: int, seed: int) -> dict:
    """Fidelity of ``n`` real training slices against the held-out ones: the floor."""
    sample = train.sample(n, np.random.default_rng(seed))
    ref_rad, _ = radiomics_features(list(sample.images))
    domain = encoder.features(real.images), encoder.features(sample.images)
    return {"fidelity": fidelity(real_radiomics, ref_rad, *domain)}


def _progress(console: Console, kind: str):
    last = {}

    def report(step: str, done: int, total: int) -> None:
        if done == total and last.get(step) != done:
            console.print(f"  {kind}: {step} {done}/{total}")
        last[step] = done

    return report


def _slim(results: dict) -> dict:
    """Drop the per-image lists (kept in each HTML report) from the committed JSON."""
    for metrics in results["models"].values():
        for key in ("nearest_correlations", "reference_correlations"):
            metrics.get("privacy", {}).pop(key, None)
    return results


def _value(record, key: str | None = None, pct: bool = False) -> str:
    record = record.get(key, {}) if key else record
    if not isinstance(record, dict) or "value" not in record:
        return "-"
    return f"{record['value']:.0%}" if pct else f"{record['value']:.3g}"


def table(results: dict) -> Table:
    out = Table(
        "model", "FRD", "FID dom", "KID dom", "precision", "recall", "MS-SSIM within",
        "modality / anatomy adh.", "copies", "MIA AUC",
        title="Evaluation on the demo held-out split (64x64)",
    )  # fmt: skip
    rows = dict(results["models"])
    for kind, m in rows.items():
        f = m["fidelity"]
        adh = m["adherence"]["synthetic"]
        mia = m.get("membership", {})
        out.add_row(
            kind,
            _value(f, "frd"),
            _value(f, "fid_domain"),
            _value(f, "kid_domain"),
            _value(f.get("prdc", {}), "precision"),
            _value(f.get("prdc", {}), "recall"),
            _value(m["diversity"], "ms_ssim_within_prompt"),
            f"{adh['modality']['accuracy']:.0%} / {adh['anatomy']['accuracy']:.0%}",
            f"{m['privacy'].get('share_synthetic_flagged', float('nan')):.1%}",
            _value(mia, "ldm_denoising") if "ldm_denoising" in mia else _value(mia, "vae_reconstruction"),
        )
    ref = results["real_train"]["fidelity"]
    out.add_row(
        "real train", _value(ref, "frd"), _value(ref, "fid_domain"), _value(ref, "kid_domain"),
        _value(ref.get("prdc", {}), "precision"), _value(ref.get("prdc", {}), "recall"),
        "-", "-", "100 % (they are)", "-",
    )  # fmt: skip
    return out


def utility_table(results: dict) -> Table:
    """AUROC [95 % CI] of the finding CNN per training arm, tested on held-out real subjects."""
    names = ("real", "shuffled_labels", "synthetic", "real+synthetic")
    names += tuple(f"transfer:{n}" for n in ("real", "synthetic", "real+synthetic"))
    title = "Utility: tumour present vs absent on chest CT, AUROC on the held-out subject (lung2)"
    out = Table("model", *names, title=title)
    for kind, m in results["models"].items():
        arms = m.get("utility", {}).get("arms", {})
        out.add_row(kind, *(_interval(arms.get(n, {}).get("auroc")) for n in names))
    return out


def _interval(record) -> str:
    if not isinstance(record, dict) or "value" not in record:
        return "-"
    return f"{record['value']:.2f} [{record['low']:.2f}, {record['high']:.2f}]"


if __name__ == "__main__":
    main()
