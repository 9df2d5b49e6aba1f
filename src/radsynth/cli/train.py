"""``radsynth train CONFIG.yaml``: train a model from a recipe (one process or torchrun)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console


def train(
    config: Annotated[Path, typer.Argument(help="YAML recipe (configs/*.yaml).", show_default=False)],
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the newest checkpoint in the run folder.")
    ] = False,
    device: Annotated[
        str | None, typer.Option("--device", help="cpu or cuda (default: cuda when available).")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", help="Override the recipe's step count.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Override the recipe's run folder.")] = None,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")] = True,
) -> None:
    """Train the recipe's task; the final model lands in <out>/model (weights + card.json).

    Data-parallel with the same recipe: torchrun --nproc_per_node N --no-python radsynth
    train CONFIG.yaml (each process takes batch_size / N of the global batch).
    """
    from radsynth.train import load_config
    from radsynth.train import train as run_training

    recipe = load_config(config).with_overrides(steps=steps, out=None if out is None else str(out))
    folder = run_training(recipe, resume=resume, device=device, progress=progress)
    if int(os.environ.get("RANK", "0")) == 0:
        Console().print(f"[bold green]trained[/] {recipe.model_id}: {recipe.steps} steps -> {folder}")
