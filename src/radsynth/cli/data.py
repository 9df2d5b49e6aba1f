"""``radsynth data``: build the demo corpus, ingest users' data, check a manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Build the demo corpus and ingest your own images into a manifest.", no_args_is_help=True
)
console = Console()
err_console = Console(stderr=True)


def _counts_table(title: str, summary: dict[str, dict[str, int]]) -> Table:
    """One table: a row per (field, value) with its count."""
    table = Table(title=title)
    table.add_column("by")
    table.add_column("value")
    table.add_column("images", justify="right")
    for name, counts in summary.items():
        for i, (value, n) in enumerate(counts.items()):
            table.add_row(name if i == 0 else "", value, str(n), end_section=i == len(counts) - 1)
    return table


def _qc_table(counts: dict[str, int]) -> Table:
    table = Table(title="Quality control")
    table.add_column("check")
    table.add_column("count", justify="right")
    for name, n in counts.items():
        table.add_row(name, str(n))
    return table


def _warn(line: str) -> None:
    err_console.print(f"[yellow]warning:[/] {line}", highlight=False, soft_wrap=True)


@app.command()
def demo(
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="Corpus folder (default: the cache).")
    ] = None,
    size: Annotated[int, typer.Option("--size", help="Slice size in pixels: 64, 128 or 256.")] = 64,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if a cached build is valid.")] = False,
) -> None:
    """Build (or reuse) the demo corpus of real CT and MR slices from installed packages."""
    from radsynth.data.demo import build_demo

    corpus = build_demo(out, size=size, force=force, log=_log_demo)
    console.print(
        _counts_table(f"Demo corpus: {len(corpus.records)} images, {size}x{size}", corpus.summary())
    )
    how = "cached" if corpus.cached else "built"
    console.print(f"{how} in {corpus.seconds:.2f} s from {len(corpus.sources)} sources", highlight=False)
    console.print(str(corpus.manifest), highlight=False, soft_wrap=True)


def _log_demo(line: str) -> None:
    if "skipped" in line:
        _warn(line)


@app.command()
def cxr(
    out: Annotated[Path, typer.Option("-o", "--out", help="Corpus folder to create.")],
    size: Annotated[int, typer.Option("--size", help="Image size in pixels: 128 or 256.")] = 256,
    root: Annotated[
        Path | None,
        typer.Option("--root", help="Folder holding the CXR data sets (default: shared/data found above)."),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the patient-level split.")] = 0,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even if the build in --out is valid.")
    ] = False,
) -> None:
    """Build the chest X-ray corpus (Kermany, NIH ChestX-ray14, ieee8023, Figure 1) as a manifest."""
    from radsynth.data.cxr import build_cxr
    from radsynth.text.phi import scrub_phi

    corpus = build_cxr(out, scrub=scrub_phi, size=size, root=root, seed=seed, force=force, log=_warn)
    table = Table(title=f"Chest X-ray corpus: {len(corpus.records)} images, {size}x{size}")
    for name in ("source", "images", "patients", "findings", "train/val/test", "skipped", "licence"):
        table.add_column(name, justify="right" if name in ("images", "patients") else "left")
    for source, row in corpus.table().items():
        # "pneumonia (viral)" -> "viral": the subtypes are pneumonias
        findings = ", ".join(
            f"{k.removeprefix('pneumonia (').rstrip(')')} {v}" for k, v in row["findings"].items()
        )
        splits = "/".join(str(v) for v in row["splits"].values())
        skipped = ", ".join(f"{v} {k}" for k, v in row["skipped"].items()) or "0"
        table.add_row(
            source.removeprefix("cxr_").removesuffix("_256"),
            str(row["images"]),
            str(row["patients"]),
            findings,
            splits,
            skipped,
            row["licence"],
        )
    console.print(table)
    for line in corpus.missing:
        console.print(f"not built: {line}", highlight=False, soft_wrap=True)
    how = "cached" if corpus.cached else "built"
    near = f"; {corpus.near_duplicates} near-duplicate pairs across patients kept in one split"
    console.print(f"{how} in {corpus.seconds:.1f} s{near}", highlight=False)
    console.print(str(corpus.manifest), highlight=False, soft_wrap=True)


@app.command()
def atlas(
    out: Annotated[Path, typer.Option("-o", "--out", help="Corpus folder to create.")] = Path("runs/atlas"),
    root: Annotated[
        Path | None,
        typer.Option(
            "--root",
            help="The atlas pairs folder (default: harvard_aanlib_ct_mri in shared/data found above).",
        ),
    ] = None,
) -> None:
    """Build the Harvard Whole Brain Atlas CT/MR pairs as a paired corpus with 5 case folds
    (for MR -> CT: configs/translate-mr2ct-atlas*.yaml)."""
    from radsynth.data.atlas import FOLDER, UNITS, build_atlas
    from radsynth.data.cxr import default_root

    corpus = build_atlas(root or default_root() / FOLDER, out)
    cases = sorted({r.subject for r in corpus.records})
    table = Table(
        title=f"Whole Brain Atlas pairs: {len(corpus.records) // 2} slice pairs of {len(cases)} cases"
    )
    table.add_column("fold")
    table.add_column("cases")
    for k, members in enumerate(corpus.folds):
        table.add_row(str(k), ", ".join(members))
    console.print(table)
    console.print(
        f"CT in {UNITS} units (windowed, not HU); licence: {corpus.records[0].licence}", soft_wrap=True
    )
    console.print(str(corpus.manifest), highlight=False, soft_wrap=True)


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="Folder (or file) of DICOM series, NIfTI/NRRD/MHA, PNG/JPEG.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Corpus folder to create.")],
    csv: Annotated[Path | None, typer.Option("--csv", help="CSV with a text per PNG/JPEG.")] = None,
    text_column: Annotated[str, typer.Option("--text-column", help="CSV column with the text.")] = "text",
    path_column: Annotated[
        str, typer.Option("--path-column", help="CSV column with the image path.")
    ] = "path",
    subject_column: Annotated[
        str | None, typer.Option("--subject-column", help="CSV column with the subject.")
    ] = None,
    size: Annotated[int, typer.Option("--size", help="Slice size in pixels.")] = 64,
    window: Annotated[str | None, typer.Option("--window", help="CT window (default soft_tissue).")] = None,
    modality: Annotated[
        str | None, typer.Option("--modality", help="Override the modality (e.g. DX for PNGs).")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed for the subject-level split.")] = 0,
    layout: Annotated[
        str,
        typer.Option(
            "--layout",
            help="Case folders of aligned volumes: synthrad (mr|cbct, ct, mask) or brats "
            "(t1, t1ce, t2, flair, seg; BraTS 2023 t1n, t1c, t2w, t2f; BraTS-Toolkit "
            "*_t1/t1c/t2/fla_bet); auto detects them, plain never does.",
        ),
    ] = "auto",
    source_name: Annotated[
        str | None,
        typer.Option(
            "--source",
            help="Data set the images come from, into every record and model card (default 'user data').",
        ),
    ] = None,
    licence: Annotated[
        str | None,
        typer.Option(
            "--licence",
            help="Terms of that data set (default 'as provided by the user').",
        ),
    ] = None,
) -> None:
    """Ingest your images into a manifest (slices for volumes), with a QC summary."""
    from rich.progress import Progress

    from radsynth.data.ingest import ingest as run_ingest

    # Started on the first event, so an early error prints its one line and nothing else.
    progress = Progress(console=err_console, transient=True)
    task = progress.add_task("ingesting", total=None)

    def advance(done: int, total: int, name: str) -> None:
        progress.start()
        progress.update(task, completed=done, total=total, description=f"ingesting {name[:40]}")

    def problem(p) -> None:
        progress.start()
        progress.console.print(f"[yellow]skipped:[/] {p}", highlight=False, soft_wrap=True)

    try:
        result = run_ingest(
            path,
            out,
            csv_path=csv,
            text_column=text_column,
            path_column=path_column,
            subject_column=subject_column,
            size=size,
            window=window,
            modality=modality,
            seed=seed,
            on_problem=problem,
            on_progress=advance,
            layout=layout,
            source_name=source_name,
            licence=licence,
        )
    finally:
        progress.stop()
    console.print(_counts_table(f"Ingested: {len(result.records)} images", result.summary()))
    skipped = result.skipped()
    if skipped:
        table = Table(title=f"Skipped: {sum(skipped.values())} inputs")
        table.add_column("why")
        table.add_column("count", justify="right")
        for why, n in skipped.items():
            table.add_row(why, str(n))
        console.print(table)
    console.print(_qc_table(result.qc.counts()))
    console.print(str(result.manifest), highlight=False, soft_wrap=True)


@app.command()
def qc(
    manifest: Annotated[Path, typer.Argument(help="manifest.jsonl to check.")],
) -> None:
    """Check a manifest: missing, unreadable, duplicate files and subjects leaked across splits.

    Exits with status 1 when test data leaks into training (a subject in two splits, or
    the same pixels in two splits).
    """
    from radsynth.data.qc import check_manifest

    report = check_manifest(manifest)
    console.print(_qc_table(report.counts()))
    for line in report.problems():
        console.print(line, highlight=False, soft_wrap=True, markup=False)
    if report.has_leak:
        err_console.print(f"[bold red]error:[/] {manifest}: split leak", highlight=False)
        raise typer.Exit(1)
    console.print("no split leak" + ("" if report.ok else " (see the problems above)"), highlight=False)
