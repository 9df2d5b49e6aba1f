"""``radsynth detect train|score``: the synthetic-image detector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from radsynth import DEFAULT_FAMILY
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
    ] = Path("runs/detector-demo-64"),
    data: Annotated[
        Path, typer.Option("--data", help="Folder for the real + synthetic training set (reused).")
    ] = Path("runs/detector-set"),
    manifest: Annotated[
        str, typer.Option("--manifest", help="Real corpus (manifest or demo:<size>).")
    ] = "demo:64",
    weights: Annotated[
        str, typer.Option("--weights", help="Generator family drawing the synthetic set.")
    ] = DEFAULT_FAMILY,
    generators: Annotated[
        str, typer.Option("--generators", help="Generators in the set (comma list of ldm, gan, vae).")
    ] = "ldm,gan,vae",
    train_on: Annotated[
        str | None,
        typer.Option("--train-on", help="Train on these generators only (e.g. gan,vae); test on all."),
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Training steps (default 600).")] = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Build the training set (real slices + each generator's images, held-out subjects
    and captions for testing), train, and report held-out AUROC per generator."""
    from rich.progress import Progress

    from radsynth.generate.detector_set import DetectorSetSpec, build_detector_set
    from radsynth.provenance.detector import train_detector

    spec = DetectorSetSpec(
        manifest=manifest, weights=weights, generators=tuple(_names(generators) or ()), seed=seed
    )
    chosen = _names(train_on)
    if chosen and not set(chosen) <= set(spec.generators):
        raise InvalidInput(f"--train-on {chosen} must be among --generators {list(spec.generators)}")
    with Progress(console=Console(stderr=True)) as bar:
        task = bar.add_task("synthetic set", total=None)

        def step(what: str, done: int, total: int) -> None:
            bar.update(task, description=f"drawing {what}", completed=done, total=total)

        set_manifest = build_detector_set(data, spec, on_progress=step)
    folder, figures = train_detector(
        set_manifest, out, generators=chosen, steps=steps, seed=seed, progress=True
    )
    table = Table(title=f"held-out AUROC ({folder})")
    table.add_column("generator")
    table.add_column("AUROC")
    table.add_column("images")
    for name, row in figures["per_generator"].items():
        table.add_row(name, f"{row['auroc']:.3f}", str(row["n"]))
    table.add_row("all", f"{figures['auroc']:.3f}", f"{figures['real_n']} real")
    Console().print(table)


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
    rows = [{"file": str(f), "p_synthetic": round(detector.score_image(read_image(f)), 4)} for f in files]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table(title=f"detector {detector.model_id} (threshold {detector.threshold})")
    table.add_column("file", overflow="fold")
    table.add_column("P(synthetic)")
    for row in rows:
        table.add_row(row["file"], f"{row['p_synthetic']:.3f}")
    Console().print(table)
