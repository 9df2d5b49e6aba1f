"""A patient education handout from a free-text radiology report.

:func:`make_handout` reads the report's positive findings (:mod:`.findings`), draws each
one the shipped model can draw as synthetic pictures in its own caption vocabulary
(:mod:`.plain_language`; written marked, watermarked and audit-logged by
``radsynth.generate.write_batch``) and writes a one-page ``handout.html`` (self-contained) and
``handout.pdf`` (one A4 page) that label every picture SYNTHETIC and explain each finding
in plain words (:mod:`.render`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from radsynth import DEFAULT_FAMILY
from radsynth.education.findings import Finding, positive_findings
from radsynth.education.plain_language import finding_prompt, picture_caption, text_caption
from radsynth.education.render import HandoutItem, render_html, write_pdf
from radsynth.errors import InvalidInput
from radsynth.extras import require_extra
from radsynth.generate.outputs import check_output_folder, write_batch
from radsynth.io.atomic import write_text_atomic

if TYPE_CHECKING:
    from radsynth.sampling.pipeline import GenerationPipeline

HTML_NAME = "handout.html"
PDF_NAME = "handout.pdf"


@dataclass(frozen=True)
class Handout:
    """What :func:`make_handout` wrote."""

    folder: Path
    html: Path
    pdf: Path
    items: tuple[HandoutItem, ...]

    @property
    def images(self) -> list[Path]:
        return [path for item in self.items for path in item.images]


def check_request(out_folder: str | Path, n_per_finding: int, overwrite: bool = False) -> Path:
    """The output folder, checked (nothing made) before any sampling; one-line errors."""
    require_extra("education", "a handout's PDF")
    if not isinstance(n_per_finding, int) or not 1 <= n_per_finding <= 6:
        raise InvalidInput(f"pictures per finding must be an integer in 1..6, got {n_per_finding!r}")
    folder = check_output_folder(out_folder, create=False)
    for name in () if overwrite else (HTML_NAME, PDF_NAME):
        if (folder / name).exists():
            raise InvalidInput(
                "would overwrite an earlier handout; choose another folder or --overwrite", folder / name
            )
    return folder


def make_handout(
    report: str,
    out_folder: str | Path,
    *,
    n_per_finding: int = 2,
    seed: int = 0,
    steps: int | None = None,
    weights: str | Path = DEFAULT_FAMILY,
    pipeline: GenerationPipeline | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
    audit_log: str | Path | None = None,
) -> Handout:
    """Pictures for each drawable finding of ``report`` (``n_per_finding`` each, finding k
    from seed ``seed + k * n_per_finding``), written as marked PNGs under
    ``out_folder/finding-<k>/``, and ``handout.html`` + ``handout.pdf`` beside them.

    ``pipeline`` (a ``GenerationPipeline``) is loaded from ``weights`` when not given and
    only when some finding can be drawn; ``on_progress(done, total)`` counts images;
    ``audit_log``: where the pictures are logged (default: ``default_log()``).
    """
    folder = check_request(out_folder, n_per_finding, overwrite)
    findings = positive_findings(report)
    if pipeline is None and any(finding_prompt(f) for f in findings):
        from radsynth.generate.models import load_pipeline

        pipeline = load_pipeline(weights)
    prompts = [_drawable(f, pipeline) for f in findings]
    total, done = n_per_finding * sum(1 for p in prompts if p), 0
    items = []
    folder = check_output_folder(folder)
    for k, (f, prompt) in enumerate(zip(findings, prompts, strict=True)):
        if prompt is None:
            items.append(HandoutItem(f, text_caption(f)))
            continue
        images = pipeline.generate(
            prompt,
            n=n_per_finding,
            seed=seed + k * n_per_finding,
            steps=steps,
            on_progress=_offset(on_progress, done, total),
        )
        done += n_per_finding
        batch = write_batch(
            images,
            folder / f"finding-{k + 1}",
            "png",
            overwrite=overwrite,
            card_extra={"purpose": "patient education handout"},
            audit_log=audit_log,
        )
        items.append(HandoutItem(f, picture_caption(f, prompt), prompt, tuple(batch.files)))
    handout = Handout(folder, folder / HTML_NAME, folder / PDF_NAME, tuple(items))
    write_text_atomic(handout.html, render_html(handout.items))
    write_pdf(handout.items, handout.pdf)
    return handout


def _drawable(finding: Finding, pipeline: GenerationPipeline | None) -> str | None:
    """The prompt that draws ``finding``, or None when the model draws no such thing or
    lacks a word of it (a stated size is illustrative: dropped when the model lacks it)."""
    prompt = finding_prompt(finding)
    if prompt is None:
        return None
    if finding.size_mm and pipeline.check_prompt(prompt):
        prompt = finding_prompt(replace(finding, size_mm=None))
    return None if pipeline.check_prompt(prompt) else prompt


def _offset(on_progress: Callable[[int, int], None] | None, done: int, total: int):
    """One finding's ``on_progress(d, n)`` as the handout's ``(done + d, total)``."""
    return None if on_progress is None else lambda d, _n: on_progress(done + d, total)
