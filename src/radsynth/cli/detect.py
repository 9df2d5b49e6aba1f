"""``radsynth detect train|score``: the synthetic-image detector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from radsynth.errors import InvalidInput

app = typer.Typer(
    help="The synthetic-image detector (pixels only: no metadata, no watermark).", no_args_is_help=True
)


def _names(text: str | None) -> list[str] | None:
    return [t.strip() for t in text.split(",") if t.strip()] if text else None


@app.command()
def train(
    out: Annotated[
        Path, typer.Option("-o", "--out", help="Run folder; the model lands in OUT/model.")
    ] = Path("runs/detector"),
    data: Annotated[
        Path, typer.Option("--data", help="Folder for the real + synthetic training set (reused).")
    ] = Path("runs/detector-set"),
    root: Annotated[
        Path | None,
        typer.Option("--root", help="The shared data folder (default: found beside the repository)."),
    ] = None,
    hold_out_generators: Annotated[
        str,
        typer.Option(
            "--hold-out-generators", help="Generators each left out once in calibration (comma list)."
        ),
    ] = "cxr-ldm,translate-mr2ct",
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate/--no-calibrate", help="Leave-one-source-out threshold (one run per source)."
        ),
    ] = True,
    view: Annotated[
        str,
        typer.Option(
            "--view", help="Network input: residual (fine texture, default) or image (whole picture)."
        ),
    ] = "residual",
    steps: Annotated[
        int | None, typer.Option("--steps", help="Training steps per run (default 3000).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Build the set (every real source against every generator, see
    radsynth.generate.detector_set), train on everything, then calibrate the threshold: each
    real source left out of training in turn, and the sources no detector trains on scored
    by this one; the worst of them at or under 1 % flagged. Threshold and calibration go
    into the card."""
    from rich.progress import Progress

    from radsynth.generate.detector_set import (
        REAL_SOURCES,
        DetectorSetSpec,
        build_detector_set,
        never_trained_images,
    )
    from radsynth.provenance.detector import (
        SyntheticDetector,
        calibrate_detector,
        never_trained_threshold,
        record_calibration,
        train_detector,
    )

    spec = DetectorSetSpec(root=str(root or ""), seed=seed)
    held_generators = _names(hold_out_generators) or []
    unknown = set(held_generators) - set(spec.chosen_generators)
    if unknown:
        raise InvalidInput(
            f"--hold-out-generators {sorted(unknown)} must be among {list(spec.chosen_generators)}"
        )
    with Progress(console=Console(stderr=True)) as bar:
        task = bar.add_task("detector set", total=None)

        def step(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total)

        set_manifest = build_detector_set(data, spec, on_progress=step)
    folder, figures = train_detector(set_manifest, out, view=view, steps=steps, seed=seed, progress=True)
    calibration = None
    if calibrate:
        never_trained = [s for s in spec.sources if REAL_SOURCES[s].test_only]
        never = {k: v for s in never_trained for k, v in never_trained_images(s, set_manifest, spec).items()}
        unseen = never_trained_threshold(SyntheticDetector.load(folder), never)
        trainable = [s for s in spec.sources if not REAL_SOURCES[s].test_only]
        with Progress(console=Console(stderr=True)) as bar:
            task = bar.add_task("calibration", total=len(trainable) + len(held_generators))

            def ran(name: str) -> None:
                bar.update(task, description=f"calibration: without {name}", advance=1)

            calibration = calibrate_detector(
                set_manifest,
                out / "calibration",
                sources=trainable,
                generators=held_generators,
                view=view,
                steps=steps,
                seed=seed,
                floor=unseen["threshold"],
                on_run=ran,
            )
        calibration["never_trained"] = unseen
        figures = record_calibration(folder, set_manifest, calibration)
    _print_figures(folder, figures, calibration)


def _print_figures(folder: Path, figures: dict, calibration: dict | None) -> None:
    console = Console()
    if calibration:
        table = Table(title=f"left out in training: threshold {calibration['threshold']:.4f}")
        for column in ("left out", "images", "FPR at threshold", "AUROC", "largest P"):
            table.add_column(column)
        for name, row in calibration["leave_one_source_out"].items():
            table.add_row(
                name, str(row["n"]), f"{row['fpr']:.1%}", f"{row['auroc']:.3f}", f"{row['max_p']:.3f}"
            )
        for name, row in calibration["leave_one_generator_out"].items():
            table.add_row(name, str(row["n"]), f"caught {row['caught']:.1%}", f"{row['auroc']:.3f}", "")
        console.print(table)
    table = Table(title=f"held-out test split ({folder})")
    for column in ("origin", "images", "at threshold", "AUROC"):
        table.add_column(column)
    for name, row in figures["per_source"].items():
        table.add_row(name, str(row["n"]), f"FPR {row['fpr']:.1%}", f"{row['auroc']:.3f}")
    for name, row in figures["per_generator"].items():
        table.add_row(name, str(row["n"]), f"caught {row['caught']:.1%}", f"{row['auroc']:.3f}")
    console.print(table)


@app.command()
def score(
    files: Annotated[list[Path], typer.Argument(help="Image files (DICOM, NIfTI, PNG, ...).")],
    weights: Annotated[
        str | None, typer.Option("--weights", help="Detector checkpoint folder (default: the shipped one).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """P(synthetic) for each file, from its pixels alone."""
    from radsynth.io import read_image
    from radsynth.provenance.detector import SyntheticDetector

    detector = SyntheticDetector.load(weights)
    rows = []
    for f in files:
        image = read_image(f)
        outside = detector.outside_domain(image)
        p = None if outside else round(detector.score_image(image), 4)
        rows.append({"file": str(f), "p_synthetic": p, **({"not_judged": outside} if outside else {})})
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"detector {detector.model_id} (threshold {detector.threshold})")
    table.add_column("file", overflow="fold")
    table.add_column("P(synthetic)")
    for row in rows:
        table.add_row(row["file"], row.get("not_judged") or f"{row['p_synthetic']:.3f}")
    Console().print(table)
