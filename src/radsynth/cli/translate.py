"""``radsynth translate --task TASK INPUT -o OUTPUT``: a volume translated slice by slice;
a contrast task with several inputs takes ``--input t1=a.nii.gz --input t2=b.nii.gz``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from radsynth.errors import InvalidInput


def translate(
    task: Annotated[
        str,
        typer.Option(
            "--task",
            help="denoise, sr2, sr4 (super-resolution), mr2ct, t1pd (T1 -> PD) (demo); mr2ct-atlas "
            "(MR -> the Whole Brain Atlas's 8-bit CT scale, not HU), t1-t2, t2-flair, t1-flair, "
            "t1t2-flair (learnt from real glioma MR).",
        ),
    ],
    out: Annotated[Path, typer.Option("-o", "--out", help="out.nii.gz, or a folder for a DICOM series.")],
    source: Annotated[
        Path | None, typer.Argument(help="A NIfTI volume, a DICOM series folder, or NRRD/MHA.")
    ] = None,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input",
            help="A named input volume, CONTRAST=FILE (t1=a.nii.gz), once per contrast the task "
            "takes (t1t2-flair: t1 and t2), all on one grid; instead of INPUT.",
        ),
    ] = None,
    weights: Annotated[
        Path | None, typer.Option("--weights", help="A translation checkpoint folder (default: shipped).")
    ] = None,
    mask: Annotated[
        Path | None, typer.Option("--mask", help="Body mask on the input's grid (default: computed).")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output.")] = False,
) -> None:
    """Translate a volume with the input's geometry kept exactly (SR: same field of view on
    a finer grid); the output is marked synthetic and logged like every radsynth output."""
    from rich.progress import Progress

    from radsynth.translate import translate_file

    given = _named(inputs or [])
    if (source is None) == (not given):
        raise InvalidInput(
            "give the input volume as INPUT or as --input CONTRAST=FILE (not both, not neither)"
        )
    with Progress(console=Console(stderr=True), transient=True) as bar:
        job = bar.add_task(f"{task}", total=None)
        written = translate_file(
            source if source is not None else given,
            out,
            task,
            weights=weights,
            mask=mask,
            overwrite=overwrite,
            on_slice=lambda done, total: bar.update(job, completed=done, total=total),
        )
    Console().print(f"[bold green]wrote[/] {written} (synthetic, {task})")


def _named(pairs: list[str]) -> dict[str, Path]:
    """``["t1=a.nii.gz", ...]`` -> ``{"t1": Path("a.nii.gz")}``; a malformed or repeated name is one line."""
    named: dict[str, Path] = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        name = name.strip().lower()
        if not sep or not name or not path:
            raise InvalidInput(f"--input {pair!r}: expected CONTRAST=FILE, e.g. t1=t1.nii.gz")
        if name in named:
            raise InvalidInput(f"--input {name} given twice")
        named[name] = Path(path)
    return named
