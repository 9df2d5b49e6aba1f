"""``radsynth verify PATH...``: is each file synthetic, and on what evidence?"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

STYLE = {"synthetic-marked": "bold red", "watermark": "bold red", "detector": "yellow", "unreadable": "dim"}


def verify(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (walked recursively).")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list of {file, verdict, evidence}.")
    ] = False,
    detector: Annotated[
        str | None,
        typer.Option("--detector", help="Detector checkpoint folder (default: the shipped one)."),
    ] = None,
    no_detector: Annotated[
        bool, typer.Option("--no-detector", help="Marking and watermark only (faster, no torch).")
    ] = False,
    audit_log: Annotated[
        Path | None,
        typer.Option(
            "--audit-log", help="Audit log to consult (default: $RADSYNTH_AUDIT_LOG or ~/.local/share)."
        ),
    ] = None,
    max_mb: Annotated[
        float, typer.Option("--max-mb", help="Files larger than this are reported, not read.")
    ] = 2048.0,
) -> None:
    """One verdict per file: synthetic-marked (metadata), watermark (pixel mark, looked up
    in the audit log), detector (pixels look synthetic), no-evidence, or unreadable.

    Exit code: 1 when any file is synthetic, 2 when none is but some could not be
    checked, 0 otherwise, so verify can gate a pipeline.
    """
    from radsynth.provenance.verify import AuditIndex, verify_paths

    model = None
    if not no_detector:
        from radsynth.provenance.detector import SyntheticDetector

        model = SyntheticDetector.load(detector)
    audit = AuditIndex(audit_log)
    console = Console(stderr=True)
    if audit.problem:
        console.print(f"[bold red]warning:[/] {audit.problem}", highlight=False, soft_wrap=True)
    verdicts = verify_paths(paths, detector=model, audit=audit, max_bytes=int(max_mb * 1024**2))
    if as_json:
        typer.echo(json.dumps([v.to_dict() for v in verdicts], indent=2))
    else:
        _print_table(verdicts)
    if any(v.synthetic for v in verdicts):
        raise typer.Exit(1)
    if any(v.verdict == "unreadable" for v in verdicts):
        raise typer.Exit(2)


def _print_table(verdicts: list[Any]) -> None:
    from radsynth.provenance.verify import summarise

    table = Table(title=f"radsynth verify: {len(verdicts)} file(s)")
    table.add_column("file", overflow="fold")
    table.add_column("verdict")
    table.add_column("evidence", overflow="fold")
    for v in verdicts:
        style = STYLE.get(v.verdict, "green")
        table.add_row(v.file, f"[{style}]{v.verdict}[/]", summarise(v.evidence))
    Console().print(table)
