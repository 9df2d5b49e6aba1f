"""``radsynth study``: make a reader study ("spot the synthetic") in a service's data
folder, and report its answers. Readers take it in the web page (``radsynth serve``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from radsynth.cli.serve import DATA_DIR, DataDir
from radsynth.errors import InvalidInput

app = typer.Typer(
    help="Reader studies: can people tell real images from synthetic ones?", no_args_is_help=True
)


@app.command("create")
def create(
    real: Annotated[str, typer.Option("--real", help="Manifest of real images (or demo:<size>).")],
    synthetic: Annotated[
        Path, typer.Option("--synthetic", help="Folder written by radsynth generate (PNG).")
    ],
    owner: Annotated[
        str, typer.Option("--owner", help="Id of the admin token that runs the study (radsynth token list).")
    ],
    n: Annotated[int, typer.Option("-n", "--n", help="Images in the study, half real, half synthetic.")] = 40,
    seed: Annotated[int, typer.Option("--seed", help="Draws the images and their order.")] = 0,
    split: Annotated[str | None, typer.Option("--split", help="Only real images of this split.")] = None,
    pairs: Annotated[
        bool,
        typer.Option("--pairs", help="n/2 pairs of one real and one synthetic image: which is real?"),
    ] = False,
    no_detector: Annotated[
        bool, typer.Option("--no-detector", help="Reveal the watermark read only, not the detector's score.")
    ] = False,
    data_dir: DataDir = DATA_DIR,
) -> None:
    """A balanced, shuffled study; its id is printed. Images are served unmarked, the key
    stays in the service's database. With --pairs a reader sees a real and a synthetic
    image side by side (the side drawn with --seed) and picks the real one."""
    from radsynth.data.manifest import resolve_manifest
    from radsynth.serve.store import Store
    from radsynth.serve.study import create_study

    manifest = resolve_manifest(real)
    if not synthetic.is_dir():
        raise InvalidInput("--synthetic: no such folder", synthetic)
    detector = None
    if not no_detector:
        from radsynth.provenance.detector import SyntheticDetector

        detector = SyntheticDetector.load()
    store = Store(data_dir / "radsynth.db")
    try:
        study_id = create_study(store, data_dir, owner, manifest, synthetic, n, seed, split, detector, pairs)
    finally:
        store.close()
    shape = f"{n // 2} pairs, one real, one synthetic" if pairs else f"{n // 2} real, {n // 2} synthetic"
    Console(stderr=True).print(f"study of {n} images ({shape}), id:")
    typer.echo(study_id)


@app.command("report")
def report(
    study: Annotated[str, typer.Argument(help="The study's id (printed by radsynth study create).")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Folder for report.json and report.html.")],
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Bootstrap resamples per interval.")] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.")] = 0,
    data_dir: DataDir = DATA_DIR,
) -> None:
    """Per reader and pooled: accuracy, sensitivity and specificity for "synthetic",
    AUROC from the ratings, d', the fooled rate, each with a 95 % interval; per image the
    share of readers fooled; Fleiss' kappa. A study of pairs: proportion correct (2AFC),
    the fooled rate and d' = sqrt(2) z(PC)."""
    from radsynth.evaluate.reader_study import render_html
    from radsynth.serve.store import Store
    from radsynth.serve.study import Studies, study_report

    store = Store(data_dir / "radsynth.db")
    try:
        result = study_report(Studies(store, data_dir), study, n_boot=bootstrap, seed=seed)
    finally:
        store.close()
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    (out / "report.html").write_text(render_html(result), encoding="utf-8")
    pooled = result["pooled"]
    readers = len(result["readers"])
    fooled = pooled["fooled"].get("value", float("nan"))
    key = "proportion_correct" if result["mode"] == "pairs" else "accuracy"
    Console().print(
        f"{pooled['n']} answers from {readers} reader(s): {key.replace('_', ' ')} {pooled[key]['value']:.3f},"
        f" fooled {fooled:.3f}; written {out / 'report.json'}, {out / 'report.html'}"
    )
