"""``radsynth handout REPORT -o FOLDER``: a one-page patient education handout (HTML + PDF)
from a radiology report, with synthetic pictures of its findings, each labelled SYNTHETIC."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from radsynth.cli.common import Device, Precision, pipeline_warnings_muted, progress_bar
from radsynth.errors import InvalidInput


def _read_report(report: str) -> str:
    """The report's text from a file, or from stdin for ``-``."""
    if report == "-":
        return sys.stdin.read()
    path = Path(report)
    if not path.is_file():
        raise InvalidInput("no such report file", path)
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("the report is not UTF-8 text", path) from None
    except OSError as err:
        raise InvalidInput(f"cannot read the report ({err.strerror})", path) from None


def handout(
    report: Annotated[str, typer.Argument(help='Radiology report: a text file, or "-" to read stdin.')],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output folder (made if missing).")],
    n: Annotated[int, typer.Option("-n", "--n", help="Pictures per finding (1..6).")] = 2,
    seed: Annotated[int, typer.Option("--seed", help="Finding k's pictures use seeds seed + k*n, ...")] = 0,
    steps: Annotated[
        int | None, typer.Option("--steps", help="Sampler steps (default: the model card's).")
    ] = None,
    weights: Annotated[
        str | None,
        typer.Option(
            "--weights",
            help="Shipped model family or checkpoint folder (default: by the report: cxr-128 for a "
            "chest X-ray report, demo-ct-mr-64 for CT / MR).",
        ),
    ] = None,
    device: Device = None,
    precision: Precision = "auto",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an earlier handout in the same folder.")
    ] = False,
) -> None:
    """Write handout.html and handout.pdf: the report's findings in plain words, with
    synthetic pictures (marked, watermarked and audit-logged like every output)."""
    from radsynth.education.findings import positive_findings
    from radsynth.education.handout import check_request, draws_xrays, make_handout
    from radsynth.education.plain_language import family_for, finding_prompt, xray_prompt

    check_request(out, n, overwrite)  # a bad folder or count fails before reading or loading anything
    text = _read_report(report)
    findings = positive_findings(text)  # an empty or all-normal report fails before loading a model
    weights = family_for(findings) if weights is None else weights
    xray = draws_xrays(weights)
    console = Console(stderr=True)
    pipeline = None
    if any(xray_prompt(f, findings) if xray else finding_prompt(f) for f in findings):
        from radsynth.generate import load_pipeline

        with console.status(f"loading the model ({weights})"):
            pipeline = load_pipeline(weights, device=device, precision=precision)
    with pipeline_warnings_muted(), progress_bar(console, "handout") as bar:  # prompts use the model's words
        task = bar.add_task("pictures", total=None)
        result = make_handout(
            text,
            out,
            n_per_finding=n,
            seed=seed,
            steps=steps,
            weights=weights,
            pipeline=pipeline,
            on_progress=lambda done, total: bar.update(task, completed=done, total=total),
            overwrite=overwrite,
        )
    findings = [item for item in result.items if item.finding is not None]
    drawn = sum(1 for item in findings if item.images)
    words = len(findings) - drawn
    compared = len(result.items) - len(findings)
    Console().print(
        f"[bold green]wrote[/] {result.html} and {result.pdf}: {len(findings)} finding(s), "
        f"{drawn} pictured ({len(result.images)} synthetic picture(s) by {weights})"
        + (f", {words} in words only" if words else "")
        + (", normal X-rays beside them for comparison" if compared else ""),
        highlight=False,
        soft_wrap=True,  # paths stay whole for copying
    )
