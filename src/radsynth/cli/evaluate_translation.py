"""``radsynth evaluate translation PRED REF``: MAE / PSNR / SSIM inside the body (paired),
structure kept from the source, bone Dice and lesion contrast on request, per case and
overall."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from radsynth.errors import InvalidInput


def _cases(pred: Path, ref: Path) -> list[tuple[str, Path, Path]]:
    """(case, prediction, reference): one pair of files, or same-named entries of two folders."""
    if not pred.is_dir() or _is_series(pred):
        return [(pred.name, pred, ref)]
    names = sorted(p.name for p in pred.iterdir() if not p.name.startswith(".") and p.suffix != ".json")
    missing = [n for n in names if not (ref / n).exists()]
    if missing:
        raise InvalidInput(f"no reference for {', '.join(missing[:3])}", ref)
    if not names:
        raise InvalidInput("no predictions in the folder", pred)
    return [(n, pred / n, ref / n) for n in names]


def _is_series(folder: Path) -> bool:
    return any(p.suffix.lower() == ".dcm" for p in folder.iterdir())


def translation(
    pred: Annotated[Path, typer.Argument(help="Translated volume (or folder of them, matched by name).")],
    ref: Annotated[Path, typer.Argument(help="Reference volume (or folder) on the same grid.")],
    mask: Annotated[
        Path | None, typer.Option("--mask", help="Body mask (default: computed from the reference).")
    ] = None,
    source: Annotated[
        Path | None, typer.Option("--source", help="The translator's input: adds structure metrics.")
    ] = None,
    out: Annotated[Path | None, typer.Option("--json", help="Write the figures to this JSON file.")] = None,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    data_range: Annotated[
        float | None,
        typer.Option(
            "--data-range", help="PSNR/SSIM data range (default: the references' spread; CT: HU range)."
        ),
    ] = None,
    bone_threshold: Annotated[
        float | None,
        typer.Option(
            "--bone-threshold",
            help="Adds bone Dice: bone is >= this, in the images' units (230 for the 8-bit atlas CT).",
        ),
    ] = None,
    lesion: Annotated[
        bool,
        typer.Option(
            "--lesion",
            help="Adds lesion contrast and Dice (FLAIR/T2): lesion = brain voxels above mean + 2 sd.",
        ),
    ] = False,
) -> None:
    """MAE (HU for CT), PSNR and SSIM inside the body mask, per case and overall with a
    bootstrap interval over cases; with --source, mutual information and edge correlation;
    with --bone-threshold, bone Dice; with --lesion, the hyperintense lesion's contrast
    kept (prediction / reference) and its Dice, the body mask taken as the brain."""
    from radsynth.evaluate.translation import TranslationPair, evaluate_translation_pairs
    from radsynth.io import read_image, write_text_atomic

    pairs = []
    for case, p, r in _cases(pred, ref):
        body = read_image(mask).array > 0 if mask is not None else None
        src = read_image(source) if source is not None else None
        pairs.append(TranslationPair(case, read_image(p), read_image(r), body, src))
    result = evaluate_translation_pairs(
        pairs, data_range=data_range, seed=seed, bone_threshold=bone_threshold, lesion=lesion
    )
    table = Table(
        title=f"translation: {result['n_cases']} case(s), MAE in {result['units'] or 'image units'}"
    )
    metrics = [k for k in result["overall"]]
    counts = ["lesion_voxels"] if lesion else []
    table.add_column("case")
    for name in metrics + counts:
        table.add_column(name)
    for case, row in result["cases"].items():
        table.add_row(case, *[f"{row[m]:.4g}" for m in metrics], *[str(row[m]) for m in counts])
    overall = result["overall"]
    table.add_row(
        "overall",
        *[f"{overall[m]['value']:.4g} [{overall[m]['low']:.3g}, {overall[m]['high']:.3g}]" for m in metrics],
        *["" for _ in counts],
    )
    Console().print(table)
    if out is not None:
        write_text_atomic(out, json.dumps(result, indent=2, default=float) + "\n")
