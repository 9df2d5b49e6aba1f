"""Pieces several commands share: the model options, a progress bar, and muting the
pipeline's own low-confidence warning once a command has said it in its own words."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

Weights = Annotated[
    str, typer.Option("--weights", help="Shipped model family, or a checkpoint folder (card.json inside).")
]
Device = Annotated[str | None, typer.Option("--device", help="cpu or cuda (default: cuda when present).")]
Precision = Annotated[
    str,
    typer.Option(
        "--precision",
        help="Network precision: fp32 (image i the same at any batch size), bf16, or auto "
        "(bf16 where the device runs it faster; recorded in every output).",
    ),
]


def progress_bar(console: Console, title: str = "{task.description}", eta: bool = False) -> Progress:
    """A transient bar: title, bar, done / total, elapsed time (and, with ``eta``, the time
    left: for runs long enough to plan around)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn(f"[bold]{title}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        *([TimeRemainingColumn()] if eta else []),
        console=console,
        transient=True,
    )


@contextlib.contextmanager
def pipeline_warnings_muted() -> Iterator[None]:
    """The generation pipeline logs unknown prompt terms itself; commands that already told
    the user (or that build prompts from the model's own vocabulary) mute it meanwhile."""
    log = logging.getLogger("radsynth.sampling.pipeline")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)
