"""A patient education handout from a free-text radiology report.

:func:`make_handout` reads the report's positive findings (:mod:`.findings`), picks the
shipped family that pictures that kind of report (``family_for``: chest X-ray reports the
chest X-ray family, CT / MR reports the default one), draws each finding that model can
draw as synthetic pictures in its own caption vocabulary (:mod:`.plain_language`), with
SYNTHETIC written into the pixels and the files marked, watermarked and audit-logged by
``radsynth.generate.write_batch``; a chest X-ray handout adds normal X-rays for comparison.
It writes a one-page ``handout.html`` (self-contained) and ``handout.pdf`` (one A4 page) that
label every picture SYNTHETIC, name the model that made it and explain each finding in plain
words (:mod:`.render`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from radsynth.education.findings import Finding, positive_findings
from radsynth.education.plain_language import (
    XRAY_NORMAL_PROMPT,
    co_finding_caption,
    comparison_caption,
    family_for,
    finding_prompt,
    picture_caption,
    text_caption,
    xray_caption,
    xray_co_findings,
    xray_prompt,
)
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
    weights: str | Path | None = None,
    pipeline: GenerationPipeline | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    overwrite: bool = False,
    audit_log: str | Path | None = None,
) -> Handout:
    """Pictures for each drawable finding of ``report`` (``n_per_finding`` each, finding k
    from seed ``seed + k * n_per_finding``), written as marked PNGs under
    ``out_folder/finding-<k>/`` (a chest X-ray handout's normal X-rays under
    ``out_folder/comparison/``), and ``handout.html`` + ``handout.pdf`` beside them.

    ``weights``: the family or checkpoint that draws (default: ``family_for`` the report);
    ``pipeline`` (a ``GenerationPipeline``) is loaded from it when not given and only when
    some finding can be drawn; ``on_progress(done, total)`` counts images; ``audit_log``:
    where the pictures are logged (default: ``default_log()``).
    """
    folder = check_request(out_folder, n_per_finding, overwrite)
    findings = positive_findings(report)
    weights = family_for(findings) if weights is None else weights
    if pipeline is None and any(_prompt(f, findings, draws_xrays(weights)) for f in findings):
        from radsynth.generate.models import load_pipeline

        pipeline = load_pipeline(weights)
    xray = pipeline is not None and pipeline.vocabulary is not None and "DX" in pipeline.vocabulary.modality
    prompts = [_drawable(f, findings, pipeline, xray) for f in findings]
    comparison = xray and any(prompts)
    total, done = n_per_finding * (sum(1 for p in prompts if p) + comparison), 0
    items = []
    folder = check_output_folder(folder)

    def draw(prompt: str, k: int, where: str) -> tuple[Path, ...]:
        nonlocal done
        images = pipeline.generate(
            prompt,
            n=n_per_finding,
            seed=seed + k * n_per_finding,
            steps=steps,
            on_progress=_offset(on_progress, done, total),
        )
        done += n_per_finding
        batch = write_batch(
            [replace(im, array=label_synthetic(im.array)) for im in images],
            folder / where,
            "png",
            overwrite=overwrite,
            card_extra={"purpose": "patient education handout", "label": "SYNTHETIC in the pixels"},
            audit_log=audit_log,
        )
        return tuple(batch.files)

    drawn_with = {"co_findings": {f.kind for f in xray_co_findings(findings)} if xray else set()}
    for k, (f, prompt) in enumerate(zip(findings, prompts, strict=True)):
        if prompt is not None:
            caption = xray_caption(f, findings) if xray else picture_caption(f, prompt)
            files = draw(prompt, k, f"finding-{k + 1}")
            items.append(HandoutItem(f, caption, prompt, files, pipeline.model_id))
        elif comparison and f.kind in drawn_with["co_findings"]:
            items.append(HandoutItem(f, co_finding_caption(f)))
        else:
            items.append(HandoutItem(f, text_caption(f)))
    if comparison:
        files = draw(XRAY_NORMAL_PROMPT, len(findings), "comparison")
        items.append(HandoutItem(None, comparison_caption(), XRAY_NORMAL_PROMPT, files, pipeline.model_id))
    handout = Handout(folder, folder / HTML_NAME, folder / PDF_NAME, tuple(items))
    write_text_atomic(handout.html, render_html(handout.items))
    write_pdf(handout.items, handout.pdf)
    return handout


def draws_xrays(weights: str | Path) -> bool:
    """Whether a family or checkpoint draws X-rays (its LDM card's vocabulary says DX)."""
    from radsynth.models.registry import checkpoint_folder, read_card

    try:
        card = read_card(checkpoint_folder(weights, "ldm"))
    except InvalidInput:
        return False
    return "DX" in card.modalities


def _prompt(finding: Finding, findings: list[Finding], xray: bool) -> str | None:
    return xray_prompt(finding, findings) if xray else finding_prompt(finding)


def _drawable(
    finding: Finding, findings: list[Finding], pipeline: GenerationPipeline | None, xray: bool
) -> str | None:
    """The prompt that draws ``finding``, or None when the model draws no such thing or
    lacks a word of it (a stated size is illustrative: dropped when the model lacks it)."""
    prompt = _prompt(finding, findings, xray)
    if prompt is None:
        return None
    if finding.size_mm and pipeline.check_prompt(prompt):
        prompt = _prompt(replace(finding, size_mm=None), findings, xray)
    return None if pipeline.check_prompt(prompt) else prompt


def label_synthetic(array: np.ndarray) -> np.ndarray:
    """``array`` (a 2D picture in [0, 1]) with SYNTHETIC written into its pixels: white
    capitals on a black band along the bottom, a twelfth of the side or more, so the word
    survives any copy of the pixels (the file's marks are metadata and a watermark)."""
    from PIL import Image as PILImage
    from PIL import ImageDraw, ImageFont

    height, width = array.shape[-2:]
    size = max(8, width // 12)
    font = ImageFont.load_default(size=size)
    pic = PILImage.fromarray((np.clip(array, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(pic)
    left, top, right, bottom = draw.textbbox((0, 0), "SYNTHETIC", font=font)
    band = bottom - top + max(2, size // 3)
    draw.rectangle((0, height - band, width, height), fill=0)
    draw.text(((width - (right - left)) / 2 - left, height - band + (band - (bottom - top)) / 2 - top),
              "SYNTHETIC", fill=255, font=font)  # fmt: skip
    labelled = np.asarray(pic, dtype=np.float32) / 255.0
    out = array.astype(np.float32, copy=True)
    out[height - band :] = labelled[height - band :]  # the rest keeps its full precision
    return out


def _offset(on_progress: Callable[[int, int], None] | None, done: int, total: int):
    """One finding's ``on_progress(d, n)`` as the handout's ``(done + d, total)``."""
    return None if on_progress is None else lambda d, _n: on_progress(done + d, total)
