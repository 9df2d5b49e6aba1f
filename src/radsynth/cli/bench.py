"""``radsynth bench``: generation and training speed against MONAI's and diffusers'
reference pipelines on the same networks, with fidelity, FLOPs and memory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from radsynth import DEFAULT_FAMILY
from radsynth.cli.common import Precision
from radsynth.errors import InvalidInput


def _steps_list(text: str) -> tuple[int, ...]:
    try:
        steps = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise InvalidInput(f"--compare-steps must be comma-separated integers, got {text!r}") from None
    if any(s < 1 for s in steps):
        raise InvalidInput(f"--compare-steps must be positive, got {text!r}")
    return steps


def bench(
    model: Annotated[
        str, typer.Option("--weights", help="Shipped model family or LDM checkpoint folder.")
    ] = DEFAULT_FAMILY,
    device: Annotated[
        str | None, typer.Option("--device", help="cpu or cuda (default: cuda when present).")
    ] = None,
    precision: Precision = "auto",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per timed batch.")] = 16,
    repeats: Annotated[
        int,
        typer.Option("--repeats", help="Interleaved timed batches per method (also the fidelity sample)."),
    ] = 4,
    fidelity: Annotated[
        bool, typer.Option("--fidelity/--no-fidelity", help="Score each method's images by FRD.")
    ] = True,
    ddpm_steps: Annotated[int, typer.Option("--ddpm-steps", help="MONAI DDPM reference steps.")] = 1000,
    ddpm_timed_steps: Annotated[
        int | None,
        typer.Option("--ddpm-timed-steps", help="Time the first N DDPM steps and scale (loaded machines)."),
    ] = None,
    ddim_steps: Annotated[int, typer.Option("--ddim-steps", help="MONAI DDIM reference steps.")] = 50,
    compare_steps: Annotated[
        str, typer.Option("--compare-steps", help="Extra radsynth rows at these step counts, e.g. 10,25.")
    ] = "",
    train_repeats: Annotated[
        int, typer.Option("--train-repeats", help="Interleaved training steps per method (0: skip).")
    ] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seeds and held-out prompt choice.")] = 0,
    out: Annotated[Path | None, typer.Option("--out", help="Write the results as JSON here.")] = None,
) -> None:
    """Time generation of the same batches by radsynth, MONAI (DDPM, DDIM) and a diffusers
    loop (DPM-Solver++ at radsynth's steps), interleaved, plus a training step each."""
    for name, value in (("--batch-size", batch_size), ("--repeats", repeats), ("--ddpm-steps", ddpm_steps)):
        if value < 1:
            raise InvalidInput(f"{name} must be >= 1, got {value}")
    if ddpm_timed_steps is not None and ddpm_timed_steps < 1:
        raise InvalidInput(f"--ddpm-timed-steps must be >= 1, got {ddpm_timed_steps}")
    if ddim_steps < 1 or train_repeats < 0:
        raise InvalidInput("--ddim-steps must be >= 1 and --train-repeats >= 0")
    if fidelity and batch_size * repeats < 16:
        raise InvalidInput("fidelity needs at least 16 images per method (--batch-size x --repeats)")
    from radsynth.bench.report import tables
    from radsynth.bench.sampling import BenchSettings, run_benchmark

    settings = BenchSettings(
        model=model,
        device=device,
        precision=precision,
        batch_size=batch_size,
        repeats=repeats,
        fidelity=fidelity,
        ddpm_steps=ddpm_steps,
        ddpm_timed_steps=ddpm_timed_steps,
        ddim_steps=ddim_steps,
        compare_steps=_steps_list(compare_steps),
        train_repeats=train_repeats,
        seed=seed,
    )
    console = Console()
    result = run_benchmark(settings, log=lambda line: console.print(f"[dim]{line}[/]"))
    for table in tables(result):
        console.print(table)
    console.print(f"load average (1, 5, 15 min) at the end: {result['load_average']['end']}")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        console.print(f"[bold green]wrote[/] {out}")
