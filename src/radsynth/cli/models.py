"""``radsynth models``: what is shipped (the table); ``radsynth models export``: build the
inference traces of the shipped models in the user's cache, which ``scripts/setup.sh`` does
for a source checkout and a pip install does not."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from radsynth.cli.generate import models as list_models

app = typer.Typer(invoke_without_command=True)


@app.callback()
def models(ctx: typer.Context) -> None:
    """List every shipped checkpoint with what its card says; export: build their traces."""
    if ctx.invoked_subcommand is None:
        list_models()


@app.command()
def export(
    force: Annotated[bool, typer.Option("--force", help="Trace even models with fresh traces.")] = False,
) -> None:
    """Trace the shipped networks inference runs into $RADSYNTH_CACHE or ~/.cache/radsynth.

    With them generate, translate and verify start without importing MONAI (seconds less);
    fresh traces are skipped."""
    from radsynth.models.registry import export_shipped

    console = Console()
    for result in export_shipped(force=force):
        how = "traced" if result.built else "fresh, skipped"
        console.print(f"{result.model.name}/{result.model.kind}: {how} ({result.traces})", highlight=False)
