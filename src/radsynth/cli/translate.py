"""``radsynth translate --task TASK INPUT -o OUTPUT``: a volume translated slice by slice."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console


def translate(
    source: Annotated[Path, typer.Argument(help="A NIfTI volume, a DICOM series folder, or NRRD/MHA.")],
    task: Annotated[
        str, typer.Option("--task", help="denoise, sr2, sr4 (super-resolution), mr2ct, t1pd (T1 -> PD).")
    ],
    out: Annotated[Path, typer.Option("-o", "--out", help="out.nii.gz, or a folder for a DICOM series.")],
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

    with Progress(console=Console(stderr=True), transient=True) as bar:
        job = bar.add_task(f"{task}", total=None)
        written = translate_file(
            source,
            out,
            task,
            weights=weights,
            mask=mask,
            overwrite=overwrite,
            on_slice=lambda done, total: bar.update(job, completed=done, total=total),
        )
    Console().print(f"[bold green]wrote[/] {written} (synthetic, {task})")
