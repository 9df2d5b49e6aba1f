"""Do synthetic chest X-rays make a pneumonia classifier better? (issue 19)

    .venv/bin/python benchmarks/utility_cxr.py                 # every stage; resumes
    .venv/bin/python benchmarks/utility_cxr.py --stage study --task adult   # one part

Tasks (``radsynth.evaluate.utility``, finding: pneumonia vs normal / no finding):
- ``pediatric``: Kermany (``cxr_kermany_pneumonia_256``), internal test = its held-out
  patients (the corpus' test split), at ``--size`` px (64);
- ``pediatric-28``: the same at 28 px, tested on the internal patients and on the official
  PneumoniaMNIST test split (624 images, 28 px; an independent set: the 256-px Kermany
  images come from the official *train* split), training images downsampled to 28 px;
- ``adult``: the NIH ChestX-ray14 pneumonia subset, internal test only.

Regimes: 100 %, 25 %, 10 % of the training patients (``subject_fraction``: per source and
finding, nested). No leak: the 100 % arms use the shipped cxr-128 LDM, trained on the
corpus' training patients only (no test patient); the 25 % and 10 % arms use an LDM
retrained on that regime's patients only (``configs/ldm-cxr-128.yaml`` with the regime's
manifest, 2,000 steps instead of 3,000: 4-10x fewer images; stage ``generators``). The
frozen VAE under every LDM is the shipped one, trained on all training patients: an
autoencoder, no labels or text, but it did see patients outside the 25 % / 10 % regimes
(said beside the results).

Synthetic images (stage ``synthetic``): per regime and task, twice the real training
count, half normal and half pneumonia; each prompt is the caption of a training image of
that regime, source and class (the label comes from that caption's record); 15 guided
Euler steps, guidance 4 (the shipped settings); cached in ``--work``.

Arms (``STUDY_ARMS``), 3 training seeds each, every arm without augmentation except
``real+augmentation``: real; real + synthetic 1x and 2x; real + count-matched duplicates;
real + classical augmentation (flips, rotation, zoom, gamma, contrast, noise); synthetic
only (1x); pretrain on all synthetic then fine-tune on real; shuffled labels (chance).
AUROC, balanced accuracy, sensitivity at 90 % specificity, with 95 % bootstrap intervals
over the test images and the paired difference to real-only.

Attempts (stage ``attempts``, the smallest regime, 64-px tasks), what the literature says
helps when synthetic images do not: only the minority class; guidance 2 instead of 4 (more
diverse samples); only samples the real-only CNN of that regime reads as their prompt's
class; 4 synthetic images per real one instead of 1-2.

Training steps and learning rate: chosen on the validation split (stage ``tune``: real
only, 100 % and 10 %, a small grid; the test split gives only the final figures).

Writes ``benchmarks/results/utility_cxr.json`` (``--out``) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from rich.console import Console
from rich.table import Table

from radsynth import __version__
from radsynth.bench.record import git_commit, machine
from radsynth.data.manifest import Record, load_manifest, write_manifest
from radsynth.data.splits import subject_fraction
from radsynth.evaluate import ImageSet, load_set
from radsynth.evaluate.report import json_ready
from radsynth.evaluate.utility import STUDY_ARMS, UtilitySettings, regime_name, utility, utility_study

sys.path.insert(0, str(Path(__file__).resolve().parent))
from figures import utility_cells, utility_goal_cells  # noqa: E402  (the README's cells)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "utility_cxr.json"
SHARED = ROOT.parent / "shared" / "data"
MEDMNIST = SHARED / "medmnist" / "pneumoniamnist.npz"
LDM_RECIPE = ROOT / "configs" / "ldm-cxr-128.yaml"
FRACTIONS = (1.0, 0.25, 0.1)
TASKS = {
    "pediatric": ("cxr_kermany_pneumonia_256", None),
    "pediatric-28": ("cxr_kermany_pneumonia_256", 28),
    "adult": ("cxr_nih14_pneumonia_subset_256", None),
}
CLASSES = ("normal", "pneumonia")
SYNTHETIC_PER_REAL = 2  # generated per real training image; the arms take 1x and 2x of it
REGIME_STEPS = 2000  # the shipped LDM took 3,000 on 4-10x the images
TUNED_DEFAULT = (150, 1e-3)  # what stage tune chose (benchmarks/results/utility_cxr.json, "tune")
STAGES = ("prepare", "generators", "synthetic", "tune", "study", "attempts", "table")


def training_records(manifest: Path) -> list[Record]:
    """The corpus' redistributable training records (what the shipped LDM learnt from)."""
    return [
        r
        for r in load_manifest(manifest)
        if r.split == "train" and (r.labels or {}).get("redistributable", True) is True
    ]


def regime_manifest(manifest: Path, fraction: float) -> Path:
    """The regime's training records, beside the corpus manifest (its image paths resolve)."""
    return manifest.parent / f"regime-{round(fraction * 100)}.jsonl"


def prepare(args, console: Console) -> None:
    """Regime manifests and the LDM recipe for each regime below 100 %."""
    records = training_records(args.manifest)
    recipe = yaml.safe_load(LDM_RECIPE.read_text())
    for fraction in args.fractions:
        if fraction == 1.0:
            continue
        keep = subject_fraction(records, fraction, args.seed)
        chosen = [r for r in records if r.subject in keep]
        write_manifest(chosen, regime_manifest(args.manifest, fraction))
        config = {
            **recipe,
            "data": {**recipe["data"], "manifest": str(regime_manifest(args.manifest, fraction))},
        }
        config["out"] = str(generator_run(args, fraction))
        config["steps"] = REGIME_STEPS
        config["options"] = {**recipe["options"], "vae": args.vae}
        path = args.work / f"ldm-regime-{round(fraction * 100)}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        console.print(f"{regime_name(fraction)}: {len(keep)} patients, {len(chosen)} images -> {path}")


def generator_run(args, fraction: float) -> Path:
    return args.work / f"ldm-regime-{round(fraction * 100)}"


def generator(args, fraction: float) -> str | Path:
    """The LDM that saw only this regime's patients (100 %: the shipped family)."""
    return "cxr-128" if fraction == 1.0 else generator_run(args, fraction) / "model"


def resumable(args, fraction: float) -> bool:
    """A run folder with checkpoints (``--resume`` refuses one without)."""
    return any((generator_run(args, fraction) / "checkpoints").glob("step-*"))


def train_generators(args, console: Console) -> None:
    """``radsynth train`` each regime's recipe whose model is missing (resumes)."""
    for fraction in args.fractions:
        if fraction == 1.0 or (generator_run(args, fraction) / "model" / "card.json").is_file():
            continue
        recipe = args.work / f"ldm-regime-{round(fraction * 100)}.yaml"
        console.print(f"training the {regime_name(fraction)} LDM: radsynth train {recipe}")
        cli = Path(sys.executable).with_name("radsynth")  # the console script beside this Python
        subprocess.run(
            [str(cli), "train", str(recipe)] + (["--resume"] if resumable(args, fraction) else []), check=True
        )


def synthetic_path(args, fraction: float, source: str, variant: str = "") -> Path:
    return args.work / f"synthetic-{round(fraction * 100)}-{source}{variant}.npz"


VARIANTS = {  # attempts (stage attempts): name -> (images per real image, guidance, seed offset)
    "": (SYNTHETIC_PER_REAL, None, 0),
    "-guidance2": (1, 2.0, 0),
    "-more": (2, None, 500_000),
}


def make_synthetic(args, console: Console, variants: tuple[str, ...] = ("",), fractions=None) -> None:
    """Per regime and source, class-balanced images prompted with the regime's own training
    captions of each class: ``SYNTHETIC_PER_REAL`` per real image at the model's guidance
    (the study's set), or an attempt's variant."""
    from radsynth.generate import load_pipeline

    records = training_records(args.manifest)
    for fraction in fractions or args.fractions:
        keep = subject_fraction(records, fraction, args.seed)
        pipeline = None
        for source in sorted({s for s, _ in TASKS.values()}):
            for variant in variants:
                out = synthetic_path(args, fraction, source, variant)
                if out.is_file():
                    continue
                per_real, guidance, offset = VARIANTS[variant]
                pool = [r for r in records if r.subject in keep and r.source == source]
                chosen = prompts_for(pool, per_real * len(pool), args.seed + round(fraction * 1000) + offset)
                if pipeline is None:
                    pipeline = load_pipeline(generator(args, fraction), "ldm", device="cpu")
                console.print(f"{regime_name(fraction)} {source}{variant}: generating {len(chosen)} images")
                start, images = time.perf_counter(), []
                for i in range(0, len(chosen), args.batch):
                    batch = chosen[i : i + args.batch]
                    seeds = [args.seed * 1_000_000 + offset + i + j for j in range(len(batch))]
                    drawn = pipeline.sample([r.text for r in batch], seeds, guidance=guidance)
                    images.append(drawn[:, 0].float().numpy())
                tmp = out.with_suffix(".partial.npz")
                np.savez(
                    tmp,
                    images=np.concatenate(images).astype(np.float16),
                    prompts=np.asarray([r.text for r in chosen]),
                    finding=np.asarray([r.labels["finding"] for r in chosen]),
                    model=np.asarray(str(generator(args, fraction))),
                    guidance=np.asarray(-1.0 if guidance is None else guidance),
                    seconds=np.asarray(time.perf_counter() - start),
                )
                tmp.replace(out)
                console.print(f"  {len(chosen) / (time.perf_counter() - start):.2f} img/s -> {out}")


def prompts_for(pool: list[Record], n: int, seed: int) -> list[Record]:
    """``n`` training records of ``pool`` (with replacement), half of each class: their
    captions are the prompts, their findings the labels."""
    rng = np.random.default_rng(seed)
    chosen = []
    for k, finding in enumerate(CLASSES):
        members = [r for r in pool if r.labels.get("finding") == finding]
        count = n // len(CLASSES) + (k < n % len(CLASSES))
        chosen += [members[i] for i in rng.integers(0, len(members), count)]
    return chosen


def real_set(args, split: str, source: str, size: int) -> ImageSet:
    """The corpus' ``split`` images of one source, at ``size`` px, labelled by finding."""
    images = load_set(args.manifest, f"{source} {split}", (split,))
    keep = np.asarray([g.split(":", 1)[0] == source for g in images.groups], bool)
    return images.subset(keep).resized((size, size))


def synthetic_set(args, fraction: float, source: str, size: int, variant: str = "") -> ImageSet:
    data = np.load(synthetic_path(args, fraction, source, variant))
    prompts = tuple(str(p) for p in data["prompts"])
    n = len(prompts)
    images = ImageSet(
        f"synthetic {regime_name(fraction)}",
        data["images"].astype(np.float32),
        prompts,
        ("DX",) * n,
        {"finding": tuple(str(f) for f in data["finding"])},
        prompts,
    )
    return images.resized((size, size))


def medmnist_test() -> ImageSet:
    """The official PneumoniaMNIST test split (28 px; label 1 = pneumonia)."""
    data = np.load(MEDMNIST)
    images = data["test_images"].astype(np.float32) / 255.0
    finding = tuple(CLASSES[int(v)] for v in data["test_labels"].ravel())
    n = len(images)
    return ImageSet(
        "PneumoniaMNIST test", images, ("",) * n, ("DX",) * n, {"finding": finding}, tuple(map(str, range(n)))
    )


def real_regimes(args, source: str, size: int) -> dict[float, ImageSet]:
    """Each fraction's training images of ``source``: the patients its generator saw."""
    train = real_set(args, "train", source, size)
    records = training_records(args.manifest)
    out = {}
    for fraction in args.fractions:
        keep = subject_fraction(records, fraction, args.seed)
        out[fraction] = train.subset(np.asarray([g in keep for g in train.groups], bool))
    return out


def settings(args, **changes) -> UtilitySettings:
    base = UtilitySettings(
        attribute="finding",
        steps=args.steps,
        batch_size=32,
        lr=args.lr,
        seed=args.seed,
        seeds=args.seeds,
        n_boot=args.n_boot,
        augment=False,
        synthetic_per_real=1.0,
        arms=tuple(args.arms),
        transfer_arms=(),
    )
    return base if not changes else UtilitySettings(**{**base.__dict__, **changes})


def tune(args, console: Console) -> dict[str, Any]:
    """Real-only on the validation patients over a small grid of steps and learning rates,
    at 100 % and the smallest regime: the study's steps and lr are chosen here."""
    out: dict[str, Any] = {}
    for task in args.tasks:
        source, size = TASKS[task]
        size = size or args.size
        val = real_set(args, "val", source, size)
        for fraction, train in real_regimes(args, source, size).items():
            if fraction not in (max(args.fractions), min(args.fractions)):
                continue
            name = regime_name(fraction)
            for steps in (150, 300, 600):
                for lr in (3e-4, 1e-3):
                    chosen = settings(args, steps=steps, lr=lr, arms=("real",), seeds=1, n_boot=20)
                    report = utility(train, train.subset([]), val, chosen)
                    value = report["arms"]["real"]["auroc"]["value"]
                    out.setdefault(task, {}).setdefault(name, {})[f"steps={steps} lr={lr:g}"] = value
                    console.print(f"tune {task} {name} steps={steps} lr={lr:g}: val AUROC {value:.3f}")
    return out


def chosen_on_val(path: Path) -> tuple[int, float]:
    """The grid point with the highest mean validation AUROC over the tuned tasks and
    regimes (``TUNED_DEFAULT`` before stage tune has run)."""
    if not path.is_file():
        return TUNED_DEFAULT
    tuned = json.loads(path.read_text())
    points: dict[str, list[float]] = {}
    for regimes_ in tuned.values():
        for grid in regimes_.values():
            for point, value in grid.items():
                points.setdefault(point, []).append(value)
    best = max(points, key=lambda p: np.mean(points[p]))
    steps, lr = (part.split("=")[1] for part in best.split())
    return int(steps), float(lr)


def study(args, task: str, console: Console) -> dict[str, Any]:
    source, size = TASKS[task]
    size = size or args.size
    test = real_set(args, "test", source, size)
    external = {"PneumoniaMNIST test": medmnist_test()} if size == 28 else None
    start = time.perf_counter()
    report = utility_study(
        {
            regime_name(f): (real, synthetic_set(args, f, source, size))
            for f, real in real_regimes(args, source, size).items()
        },
        test,
        settings(args),
        external=external,
        progress=lambda regime, arm: console.print(
            f"  {task} {regime} {arm} ({time.perf_counter() - start:.0f} s)"
        ),
    )
    report.update(source=source, image_size=size, seconds=round(time.perf_counter() - start, 1))
    return report


def attempts(args, task: str, console: Console) -> dict[str, Any]:
    """At the smallest regime, each attempt's real + synthetic arm against real only and
    the duplicates control (paired gains as in the study)."""
    from radsynth.evaluate.utility import labelled, predict, train_classifier

    source, size = TASKS[task]
    size = size or args.size
    fraction = min(args.fractions)
    test = real_set(args, "test", source, size)
    train = real_regimes(args, source, size)[fraction]
    main = synthetic_set(args, fraction, source, size)
    arms = ("real", "real+duplicates", "real+synthetic")
    base = settings(args, arms=arms)
    finding = np.asarray(main.attributes["finding"])
    counts = {c: train.attributes["finding"].count(c) for c in CLASSES}
    minority = min(counts, key=counts.get)
    real = labelled(train, "finding", CLASSES)
    reader = train_classifier(real, len(CLASSES), base)
    agreed = predict(reader, main.images).argmax(1) == np.asarray([CLASSES.index(f) for f in finding])
    more = synthetic_set(args, fraction, source, size, "-more")
    variants = {
        f"minority class only ({minority})": (main.subset(finding == minority), base),
        "guidance 2 (1 per real image)": (synthetic_set(args, fraction, source, size, "-guidance2"), base),
        "reader-agreed samples only": (main.subset(agreed), base),
        "4 per real image": (
            _joined(main, more),
            settings(args, arms=arms, synthetic_per_real=4.0),
        ),
    }
    out: dict[str, Any] = {"regime": regime_name(fraction), "reader_agreed": float(agreed.mean())}
    for name, (synthetic, chosen) in variants.items():
        console.print(f"  {task} attempt: {name} ({len(synthetic)} synthetic images)")
        out[name] = utility(train, synthetic, test, chosen)
        out[name]["synthetic_images"] = len(synthetic)
    return out


def _joined(a: ImageSet, b: ImageSet) -> ImageSet:
    return ImageSet(
        a.name,
        np.concatenate([a.images, b.images]),
        a.texts + b.texts,
        a.modalities + b.modalities,
        {k: a.attributes[k] + b.attributes[k] for k in a.attributes},
        a.groups + b.groups,
    )


def part_path(args, task: str) -> Path:
    return args.work / f"study-{task}.json"


def attempt_path(args, task: str) -> Path:
    return args.work / f"attempts-{task}.json"


def assemble(args) -> dict[str, Any]:
    """Every task's part and the tuning grid into one results file."""
    tasks = {}
    for task in TASKS:
        if part_path(args, task).is_file():
            tasks[task] = json.loads(part_path(args, task).read_text())
    tuned = args.work / "tune.json"
    tried = {
        t: json.loads(attempt_path(args, t).read_text()) for t in TASKS if attempt_path(args, t).is_file()
    }
    return {
        "tasks": tasks,
        "attempts": tried,
        "tune": json.loads(tuned.read_text()) if tuned.is_file() else {},
        "settings": {
            "fractions": list(args.fractions),
            "arms": list(args.arms),
            "seeds": args.seeds,
            "steps": args.steps,
            "lr": args.lr,
            "size": args.size,
            "synthetic_per_real_generated": SYNTHETIC_PER_REAL,
            "generators": {regime_name(f): str(generator(args, f)) for f in args.fractions},
            "vae": "the shipped cxr-128 VAE (trained on every training patient) under every regime's LDM",
            "command": "benchmarks/utility_cxr.py " + " ".join(sys.argv[1:]),
            "git_commit": git_commit(),
            "radsynth_version": __version__,
            "machine": machine(),
        },
    }


def table(results: dict[str, Any]) -> Table:
    """The README's tables: AUROC and the gain over real only per task, test, arm and
    regime; then the goal at the smallest regime, attempts included."""
    header, rows = utility_cells(results)
    out = Table(*header, title="Pneumonia classifiers with and without synthetic chest X-rays (AUROC)")
    for row in rows:
        out.add_row(*row)
    goal = Table("task", "test", "regime", "arm", "vs real only", "vs duplicates", "goal", title="Goal")
    for row in utility_goal_cells(results):
        goal.add_row(*row)
    grid = Table.grid()
    grid.add_row(out)
    grid.add_row(goal)
    return grid


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, default=Path("runs/cxr-128/manifest.jsonl"))
    parser.add_argument(
        "--work", type=Path, default=Path("runs/utility-cxr"), help="cached generators and images"
    )
    parser.add_argument("--vae", default="runs/vae-cxr-128/model", help="the VAE under the regime LDMs")
    parser.add_argument("--stage", choices=STAGES + ("all",), default="all")
    parser.add_argument(
        "--task", dest="tasks", action="append", choices=tuple(TASKS), help="default: every task"
    )
    parser.add_argument("--fractions", type=float, nargs="+", default=FRACTIONS)
    parser.add_argument("--arms", nargs="+", default=STUDY_ARMS)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--steps", type=int, help="training steps per arm (default: chosen on val, stage tune)"
    )
    parser.add_argument("--lr", type=float, help="Adam's learning rate (default: chosen on val, stage tune)")
    parser.add_argument("--size", type=int, default=64, help="classifier input size for the internal tasks")
    parser.add_argument("--batch", type=int, default=16, help="generation batch")
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    args.tasks = args.tasks or list(TASKS)
    console = Console(width=200)
    torch.manual_seed(args.seed)
    stages = STAGES if args.stage == "all" else (args.stage,)
    if not args.manifest.is_file():
        from radsynth.data.cxr import build_cxr
        from radsynth.text.phi import scrub_phi

        build_cxr(args.manifest.parent, scrub=scrub_phi, size=128, log=console.print)
    args.work.mkdir(parents=True, exist_ok=True)
    if "prepare" in stages:
        prepare(args, console)
    if "generators" in stages:
        train_generators(args, console)
    if "synthetic" in stages:
        make_synthetic(args, console)
    if "tune" in stages:
        (args.work / "tune.json").write_text(json.dumps(tune(args, console), indent=2) + "\n")
    if args.steps is None or args.lr is None:
        steps, lr = chosen_on_val(args.work / "tune.json")
        args.steps, args.lr = args.steps or steps, args.lr or lr
    if "study" in stages:
        for task in args.tasks:
            report = json_ready(study(args, task, console))
            part_path(args, task).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    if "attempts" in stages:
        make_synthetic(args, console, ("-guidance2", "-more"), (min(args.fractions),))
        for task in args.tasks:
            if TASKS[task][1] is None:  # the 64-px tasks
                report = json_ready(attempts(args, task, console))
                attempt_path(args, task).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    if "table" in stages:
        results = json_ready(assemble(args))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        console.print(table(results))
        console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
