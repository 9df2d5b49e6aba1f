"""``radsynth data``: build the demo corpus, ingest users' data, check a manifest."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Build the demo corpus and ingest your own images into a manifest.", no_args_is_help=True
)
