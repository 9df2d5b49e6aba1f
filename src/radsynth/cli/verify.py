"""``radsynth verify PATH...``: is each file synthetic, and on what evidence?"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

STYLE = {"synthetic-marked": "bold red", "watermark": "bold red", "suspect": "yellow", "unreadable": "dim"}
# Exit codes, most serious first when files differ (a pipeline can tell proof from suspicion).
PROOF, UNREADABLE, SUSPECT = 1, 2, 3


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
    """One verdict per file. Proof: synthetic-marked (metadata), watermark (pixel mark
    with a payload that decodes, looked up in the audit log). Suspicion: suspect (the
    detector alone, with its probability; never proof). Otherwise no-evidence (the reason
    says when the detector does not apply: a modality, size or colour it never learnt), or
    unreadable.

    Exit codes, so verify can gate a pipeline: 1 some file proven synthetic;
    3 some suspect, none proven; 2 some unreadable, none proven or suspect; 0 otherwise.
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
        raise typer.Exit(PROOF)
    if any(v.suspect for v in verdicts):
        raise typer.Exit(SUSPECT)
    if any(v.verdict == "unreadable" for v in verdicts):
        raise typer.Exit(UNREADABLE)


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
