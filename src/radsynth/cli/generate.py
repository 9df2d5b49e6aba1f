"""``radsynth generate PROMPT``: synthetic images from a clinical description, marked as
synthetic, with a contact sheet; ``radsynth models``: what is shipped."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from radsynth import DEFAULT_FAMILY
from radsynth.cli.common import Device, Precision, Weights, pipeline_warnings_muted, progress_bar
from radsynth.errors import InvalidInput


def generate(
    prompt: Annotated[
        str | None,
        typer.Argument(help='e.g. "axial chest CT, lung window, tumour in the right lung" (or --plan)'),
    ] = None,
    n: Annotated[
        int | None, typer.Option("-n", "--n", help="Number of images (1..10000; default 16).")
    ] = None,
    plan: Annotated[
        Path | None,
        typer.Option(
            "--plan",
            help="A dataset plan (.jsonl or .yaml) instead of PROMPT: its images, manifest.jsonl and "
            "dataset.json go to -o; resumable, and sharded under torchrun.",
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", help="Run a plan of more than 10,000 images (the stated maximum).")
    ] = False,
    model: Annotated[str, typer.Option("--model", help="Generator: ldm, gan or vae.")] = "ldm",
    weights: Weights = DEFAULT_FAMILY,
    steps: Annotated[
        int | None, typer.Option("--steps", help="Sampler steps (ldm; default: the card's).")
    ] = None,
    guidance: Annotated[
        float | None,
        typer.Option("--guidance", help="Classifier-free guidance scale (ldm; default: the card's)."),
    ] = None,
    sampler: Annotated[
        str | None,
        typer.Option(
            "--sampler", help="ldm solver: dpmpp_2m (DPM-Solver++ 2M), unipc or ddim (default: the card's)."
        ),
    ] = None,
    guidance_interval: Annotated[
        str | None,
        typer.Option(
            "--guidance-interval",
            help="Guide only at these timestep fractions, LO,HI (e.g. 0.3,0.9), or 'all' steps "
            "(ldm; default: the card's; see benchmarks/guidance_interval.py).",
        ),
    ] = None,
    distilled: Annotated[
        bool,
        typer.Option(
            "--distilled/--no-distilled",
            help="At the distilled guidance scale use the guidance-distilled UNet (one forward per "
            "step; ldm, when shipped) or the guided original (two).",
        ),
    ] = True,
    seed: Annotated[int, typer.Option("--seed", help="Image i uses seed + i: reproducible per image.")] = 0,
    fmt: Annotated[str, typer.Option("--format", help="png, dicom or nifti.")] = "png",
    size: Annotated[
        int | None,
        typer.Option(
            "--size",
            help="Image side in pixels (default: the model's own; twice that where the family ships a "
            "x2 super-resolution stage, e.g. 256 for cxr-128).",
        ),
    ] = None,
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder (made if missing).")] = Path("out"),
    device: Device = None,
    precision: Precision = "auto",
    batch_size: Annotated[
        int, typer.Option("--batch-size", help="Images per network batch (fp32: no pixel changes).")
    ] = 16,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace earlier outputs of the same names.")
    ] = False,
    privacy_filter: Annotated[
        bool,
        typer.Option(
            "--privacy-filter",
            help="Drop images whose pixel correlation with a training image exceeds --privacy-threshold.",
        ),
    ] = False,
    privacy_threshold: Annotated[
        float,
        typer.Option(
            "--privacy-threshold", help="Near-copy threshold (default 0.95: see radsynth.evaluate.privacy)."
        ),
    ] = 0.95,
) -> None:
    """Generate N images from a text prompt; every file is marked synthetic (DICOM Conversion
    Type SYN and derivation, PNG text, NIfTI description + JSON sidecar). A prompt naming
    a modality, or only anatomy, the model never learnt is refused in one line saying what
    it draws. With --plan instead of a prompt: a labelled dataset (images, manifest.jsonl,
    dataset.json), resumed by running the same command again, sharded under torchrun."""
    from radsynth.provenance.marking import FORMATS
    from radsynth.sampling.bounds import LIBRARY
    from radsynth.sampling.pipeline import KINDS

    if (prompt is None) == (plan is None):
        raise InvalidInput("give a PROMPT or --plan PLAN, one of them")
    if plan is not None:
        given = {"-n": n, "--sampler": sampler, "--guidance-interval": guidance_interval}
        for option, value in [*given.items(), ("--overwrite", overwrite or None)]:
            if value is not None:
                raise InvalidInput(f"{option} does not go with --plan: the plan states what to draw")
        from radsynth.generate.dataset import RunOptions
        from radsynth.generate.plan import Settings

        if not 0 < privacy_threshold <= 1:
            raise InvalidInput(f"--privacy-threshold must be in (0, 1], got {privacy_threshold}")
        defaults = Settings(weights, steps, guidance, size, fmt, seed)
        options = RunOptions(
            model,
            device,
            precision,
            batch_size,
            distilled=distilled,
            privacy_threshold=privacy_threshold if privacy_filter else None,
        )
        _run_plan(plan, defaults, out, options, yes)
        return
    n = 16 if n is None else n
    if model not in KINDS:
        raise InvalidInput(f"unknown model {model!r}; choose one of {', '.join(KINDS)}")
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    LIBRARY.check(prompt, n, steps, guidance)  # the library's bounds, before a model loads
    if not 0 < privacy_threshold <= 1:
        raise InvalidInput(f"--privacy-threshold must be in (0, 1], got {privacy_threshold}")
    from radsynth.generate import check_output_folder, load_pipeline, write_batch
    from radsynth.sampling.families import LatentDiffusion

    check_output_folder(out, create=False)  # a bad folder fails before minutes of sampling
    console = Console(stderr=True)
    pipeline = load_pipeline(
        weights,
        model,
        device=device,
        precision=precision,
        distilled=distilled,
        size=size,
        batch_size=batch_size,
    )
    for option, value in (("--sampler", sampler), ("--guidance-interval", guidance_interval)):
        if value is not None and not isinstance(pipeline.generator, LatentDiffusion):
            raise InvalidInput(f"{option}: a {pipeline.kind} model has no sampler or guidance")
    if sampler is not None:
        pipeline.generator.use_sampler(sampler)
    if guidance_interval is not None:
        pipeline.generator.use_guidance_interval(_interval(guidance_interval))
    pipeline.check_domain(prompt)
    unknown = pipeline.check_prompt(prompt)
    if unknown:
        console.print(f"[yellow]warning:[/] low confidence: the model never saw {'; '.join(unknown)}")
    with pipeline_warnings_muted(), progress_bar(console, pipeline.model_id or model) as bar:  # warned above
        task = bar.add_task("generate", total=n)
        images = pipeline.generate(
            prompt,
            n=n,
            seed=seed,
            steps=steps,
            guidance=guidance,
            on_progress=lambda done, _total: bar.update(task, completed=done),
        )
    if privacy_filter:
        images = _without_near_copies(images, weights, model, privacy_threshold, console)
    batch = write_batch(images, out, fmt, overwrite=overwrite)
    Console().print(
        f"[bold green]wrote[/] {len(batch.files)} {fmt} image(s) to {batch.folder}"
        f" (contact sheet {batch.contact_sheet.name}, card {batch.card.name})"
        + (" [yellow]low confidence[/]" if batch.low_confidence else "")
    )


def _run_plan(path: Path, defaults, out: Path, options, yes: bool) -> None:
    """Read the plan, draw what the folder lacks (this rank's share under torchrun), and on
    rank 0 print what the dataset holds."""
    from radsynth.generate.dataset import run_plan
    from radsynth.generate.plan import read_plan
    from radsynth.sampling.pipeline import KINDS

    if options.kind not in KINDS:
        raise InvalidInput(f"unknown model {options.kind!r}; choose one of {', '.join(KINDS)}")
    plan = read_plan(path, defaults, yes=yes)
    console = Console(stderr=True)
    bar = progress_bar(console, f"{path.name} ({plan.total:,} images)", eta=True)
    task = bar.add_task("plan", total=plan.total)

    def progress(done: int, total: int) -> None:  # rank 0 only: every rank's committed images
        if not bar.live.is_started:
            bar.start()
        bar.update(task, completed=done, total=total)

    try:
        with pipeline_warnings_muted():
            result = run_plan(plan, out, options, on_progress=progress)
    finally:
        bar.stop()
    if result is None:  # another rank: rank 0 reports
        return
    for prompt, unknown in result.low_confidence.items():
        console.print(
            f"[yellow]warning:[/] low confidence for {prompt!r}: the model never saw {'; '.join(unknown)}"
        )
    table = Table("label", "value", "images", title=f"{result.written:,} images by label")
    for label, counts in result.label_counts.items():
        for value, count in counts.items():
            table.add_row(label, value, f"{count:,}")
    if result.label_counts:
        Console().print(table)
    resumed = f" ({result.resumed:,} from an earlier run)" if result.resumed else ""
    dropped = f"; the privacy filter dropped {result.dropped:,}" if result.dropped else ""
    Console().print(
        f"[bold green]wrote[/] {result.written:,} of {result.total:,} planned images{resumed}{dropped} "
        f"to {result.folder} ({result.manifest.name}, card {result.card.name})"
    )


def _interval(text: str) -> tuple[float, float] | None:
    """``all`` -> None (every step), ``LO,HI`` -> (lo, hi)."""
    if text.strip().lower() == "all":
        return None
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise InvalidInput(f"--guidance-interval must be LO,HI (e.g. 0.3,0.9) or all, got {text!r}") from None
    return lo, hi


def _without_near_copies(images, weights: str, model: str, threshold: float, console: Console):
    """The batch less its near-copies of the model's training images (nothing written
    when every image is one)."""
    from radsynth.generate import resolve_checkpoint
    from radsynth.generate.privacy_filter import drop_near_copies, training_images

    with console.status("privacy filter: comparing with the training images"):
        result = drop_near_copies(images, training_images(resolve_checkpoint(weights, model)), threshold)
    if result.dropped:
        worst = max(c for _, c in result.dropped)
        console.print(
            f"[yellow]privacy filter:[/] dropped {len(result.dropped)} of {len(images)} image(s) correlating "
            f"> {threshold} with a training image (highest {worst:.3f})"
        )
    if not result.kept:
        raise InvalidInput(
            f"every image nearly copies a training image (correlation > {threshold}); nothing written"
        )
    return result.kept


def models() -> None:
    """List every shipped checkpoint (generators, readers, detector, translators) with
    what its card says, a table per family, then the data each was trained on."""
    from itertools import groupby

    from rich.markup import escape
    from rich.table import Column

    from radsynth.models.registry import shipped_models

    console = Console()
    for family, group in groupby(shipped_models(), key=lambda m: m.name):
        group = list(group)
        table = Table(
            Column("kind", no_wrap=True),
            Column("task", no_wrap=True),
            Column("model id", no_wrap=True),
            "steps",
            title=f"{family} ({group[0].folder.parent})",
        )
        trained_on: dict[str, list[str]] = {}
        for shipped in group:
            card = shipped.card()
            steps = "" if card.steps is None else str(card.steps)
            table.add_row(shipped.kind, card.task, card.model_id, steps)
            sources = card.data.sources if card.data else ()
            key = "; ".join(sorted(f"{s.source}: {s.licence}" for s in sources)) or "-"
            trained_on.setdefault(key, []).append(shipped.kind)
        console.print(table)
        for sources, kinds in trained_on.items():
            console.print(f"[bold]{', '.join(kinds)}[/] trained on: {escape(sources)}", highlight=False)
