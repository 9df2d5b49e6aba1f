"""``radsynth evaluate --real MANIFEST --synthetic DIR_OR_MANIFEST --train MANIFEST -o DIR``:
fidelity, diversity, adherence, privacy, membership inference and utility of a synthetic
set, as ``report.html`` + ``metrics.json``.

``evaluate`` is a command group whose bare form runs this evaluation, so other kinds
(``radsynth evaluate translation``) can join it as subcommands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from radsynth.errors import InvalidInput

app = typer.Typer(help="Evaluate synthetic images against real ones (report.html + metrics.json).")


def _splits(value: str | None) -> tuple[str, ...]:
    return tuple(s.strip() for s in value.split(",") if s.strip()) if value else ()


def _pairs(value: str | None) -> dict[str, str]:
    """``"a=b,c=d"`` -> ``{"a": "b", "c": "d"}``."""
    pairs = {}
    for item in _splits(value):
        name, sep, wanted = item.partition("=")
        if not sep or not name or not wanted:
            raise InvalidInput(f"--utility-within expects NAME=VALUE, got {item!r}")
        pairs[name.strip()] = wanted.strip()
    return pairs


@app.callback(invoke_without_command=True)
def evaluate(
    ctx: typer.Context,
    real: Annotated[
        Path | None,
        typer.Option("--real", help="Manifest of held-out REAL images (subjects the generator never saw)."),
    ] = None,
    synthetic: Annotated[
        Path | None,
        typer.Option("--synthetic", help="Folder written by radsynth generate (any depth), or a manifest."),
    ] = None,
    train: Annotated[
        Path | None, typer.Option("--train", help="Manifest of the images the generator was trained on.")
    ] = None,
    out: Annotated[Path, typer.Option("-o", "--out", help="Report folder (made if missing).")] = Path(
        "report"
    ),
    real_split: Annotated[
        str | None, typer.Option("--real-split", help="Keep only these splits of --real, e.g. val,test.")
    ] = None,
    train_split: Annotated[
        str | None, typer.Option("--train-split", help="Keep only these splits of --train, e.g. train.")
    ] = None,
    attack: Annotated[
        str | None,
        typer.Option(
            "--attack", help="Generator for membership inference: ldm, vae (shipped) or a checkpoint folder."
        ),
    ] = None,
    attack_images: Annotated[
        int, typer.Option("--attack-images", help="Images per group (training / held-out) in the attack.")
    ] = 300,
    reader: Annotated[
        str | None, typer.Option("--reader", help="Attribute classifier folder (default: the shipped one).")
    ] = None,
    encoder: Annotated[
        str | None, typer.Option("--encoder", help="Domain encoder folder (default: the shipped one).")
    ] = None,
    utility_task: Annotated[
        str,
        typer.Option(
            "--utility-task", help="Attribute the utility CNN learns: finding, modality or anatomy."
        ),
    ] = "finding",
    utility_within: Annotated[
        str | None,
        typer.Option("--utility-within", help="Keep only images with NAME=VALUE, e.g. anatomy=chest."),
    ] = None,
    utility_steps: Annotated[
        int, typer.Option("--utility-steps", help="Training steps per utility arm.")
    ] = 300,
    utility_regimes: Annotated[
        str,
        typer.Option(
            "--utility-regimes",
            help="Fractions of the training subjects, comma-separated (1: one regime, every subject).",
        ),
    ] = "1,0.25,0.1",
    utility_seeds: Annotated[
        int, typer.Option("--utility-seeds", help="Training runs per utility arm (seed, seed+1, ...).")
    ] = 1,
    copy_threshold: Annotated[
        float, typer.Option("--copy-threshold", help="Pixel correlation above which an image is a copy.")
    ] = 0.95,
    resample: Annotated[
        bool, typer.Option("--resample", help="Resize images whose size differs from the real set's.")
    ] = False,
    radiomics: Annotated[
        bool, typer.Option("--radiomics/--no-radiomics", help="Compute FRD (slowest step).")
    ] = True,
    n_boot: Annotated[int, typer.Option("--bootstrap", help="Bootstrap resamples per interval.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every random choice.")] = 0,
) -> None:
    """Evaluate a synthetic set: FRD/FID/KID, precision/recall, MS-SSIM, adherence, copies,
    membership inference, and utility: a CNN trained on real, synthetic and both, tested on
    held-out real subjects, with every training subject and with 25 % and 10 % of them
    (scarce data, where synthetic images should help most), against a duplicates control."""
    if ctx.invoked_subcommand is not None:
        return
    missing = [
        name
        for name, value in (("--real", real), ("--synthetic", synthetic), ("--train", train))
        if value is None
    ]
    if missing:
        raise InvalidInput(
            f"missing {', '.join(missing)}: radsynth evaluate --real M --synthetic D --train M -o DIR"
        )
    if not 0 < copy_threshold <= 1:
        raise InvalidInput(f"--copy-threshold must be in (0, 1], got {copy_threshold}")
    if min(utility_steps, utility_seeds, n_boot, attack_images) < 1:
        raise InvalidInput("--utility-steps, --utility-seeds, --bootstrap and --attack-images must be >= 1")
    regimes = _fractions(utility_regimes)
    if out.exists() and not out.is_dir():
        raise InvalidInput("output folder is a file", out)
    from radsynth.extras import require_extra

    require_extra("eval", "radsynth evaluate")
    from radsynth.evaluate.report import write_report
    from radsynth.evaluate.run import EvaluationOptions
    from radsynth.evaluate.sets import load_set
    from radsynth.evaluate.utility import STUDY_ARMS, UtilitySettings

    options = EvaluationOptions(
        seed=seed,
        n_boot=n_boot,
        resample=resample,
        copy_threshold=copy_threshold,
        max_membership=attack_images,
        radiomics=radiomics,
        utility=UtilitySettings(
            attribute=utility_task,
            within=_pairs(utility_within),
            steps=utility_steps,
            seed=seed,
            seeds=utility_seeds,
            augment=False,
            synthetic_per_real=1.0,
            arms=STUDY_ARMS,
        ),
        utility_regimes=regimes,
    )
    console = Console(stderr=True)
    with console.status("reading the sets"):
        sets = {
            "real": load_set(real, "real", _splits(real_split), resample),
            "synthetic": load_set(synthetic, "synthetic", (), resample),
            "train": load_set(train, "train", _splits(train_split), resample),
        }
    models = _models(reader, encoder, attack)
    evaluation = _run(sets, models, options, console)
    report, metrics = write_report(evaluation, out)
    Console().print(f"[bold green]wrote[/] {report} and {metrics}")
    for line in _skipped(evaluation.metrics):
        console.print(f"[yellow]not reported:[/] {line}", highlight=False, soft_wrap=True)


def _fractions(text: str) -> tuple[float, ...]:
    """``"1,0.25,0.1"`` -> ``(1.0, 0.25, 0.1)``; each in (0, 1]."""
    try:
        fractions = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        fractions = ()
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise InvalidInput(f"--utility-regimes expects fractions in (0, 1] like 1,0.25,0.1, got {text!r}")
    return fractions


def _models(reader: str | None, encoder: str | None, attack: str | None):
    from radsynth import DEFAULT_FAMILY
    from radsynth.evaluate.features import DomainReader
    from radsynth.evaluate.run import Models
    from radsynth.generate import load_pipeline
    from radsynth.models.registry import shipped

    reader_folder = Path(reader) if reader else shipped("classifier")
    encoder_folder = Path(encoder) if encoder else shipped("encoder")
    pipeline = None
    if attack:  # its networks are scored directly (no generation): precision does not apply
        kind = attack if attack in ("ldm", "vae", "gan") else None
        # the eager networks: the attack reads the VAE's encoder and the training loss
        name = attack if kind is None else DEFAULT_FAMILY
        pipeline = load_pipeline(name, kind or "ldm", device="cpu", exported=False)
    return Models(DomainReader(reader_folder), DomainReader(encoder_folder), pipeline)


def _run(sets, models, options, console):
    from radsynth.cli.common import progress_bar
    from radsynth.evaluate.run import evaluate

    with progress_bar(console) as bar:
        tasks: dict[str, int] = {}

        def progress(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done)

        return evaluate(sets["real"], sets["synthetic"], sets["train"], models, options, progress)


def _skipped(metrics, path: str = "") -> list[str]:
    """``where: why`` for every metric that was not computed."""
    if not isinstance(metrics, dict):
        return []
    if "skipped" in metrics:
        return [f"{path}: {metrics['skipped']}"]
    return [line for key, value in metrics.items() for line in _skipped(value, f"{path}.{key}".strip("."))]
