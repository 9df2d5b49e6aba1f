"""``radsynth audit check``: verify the hash-chained audit log of synthetic outputs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="The audit log of every synthetic output radsynth wrote.", no_args_is_help=True)


@app.command()
def check(
    log: Annotated[
        Path | None, typer.Option("--log", help="Audit log (default: $RADSYNTH_AUDIT_LOG or ~/.local/share).")
    ] = None,
) -> None:
    """Check every line's hash and the chain; exit 1 when a line was changed, removed or added."""
    from radsynth.provenance import check_log, default_log

    path = log or default_log()
    report = check_log(path)
    if report.ok:
        Console().print(f"[bold green]ok[/] {path}: {report.lines} lines, chain intact")
        return
    where = f" at line {report.line}" if report.line else ""
    Console(stderr=True).print(f"[bold red]tampered[/] {path}{where}: {report.problem}", highlight=False)
    raise typer.Exit(1)
