"""The handout on paper: one self-contained HTML page and a one-page A4 PDF, every
picture labelled SYNTHETIC. The report's sentences are quoted only after the PHI scrubber
(``radsynth.text.phi``) has removed names, dates and record numbers."""

from __future__ import annotations

import base64
import datetime
import hashlib
import html
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from radsynth.education.findings import Finding
from radsynth.education.plain_language import PICTURE_PREFACE, described, report_word
from radsynth.extras import optional_import
from radsynth.io.atomic import atomic_path
from radsynth.text.phi import scrub_phi

A4_INCHES = (8.27, 11.69)
DISCLAIMER = (
    "The pictures in this handout are SYNTHETIC: a computer program made them from words. "
    "They are not your images and they do not show your body. They only illustrate the kind "
    "of finding your report describes; size, shape and position will differ from yours. "
    "Please talk to your doctor about your own scan and what it means for you."
)


@dataclass(frozen=True)
class HandoutItem:
    """A finding as the handout shows it: pictures drawn from ``prompt`` by the model
    ``model``, or words only (no prompt, no images). ``finding`` None: pictures shown for
    comparison (a normal chest X-ray), quoting nothing from the report."""

    finding: Finding | None
    caption: str
    prompt: str | None = None
    images: tuple[Path, ...] = ()
    model: str | None = None

    @property
    def made_by(self) -> str:
        """Which model made the pictures, for the page ("" without pictures)."""
        return f"Pictures made by the computer model {self.model}." if self.images and self.model else ""


_SECTION_PREFIX = re.compile(r"^\s*[A-Z][A-Z /&()-]{1,40}:\s*")
# a de-identified report's redactions ("XXXX", "XXXX XXXX"): an ellipsis in the quote
_REDACTED_WORDS = re.compile(r"X{3,}(?:[\s-]+X{3,})*")


def _facts() -> tuple[str, str]:
    from radsynth import __version__

    return datetime.date.today().isoformat(), __version__


def glossary(items: Sequence[HandoutItem]) -> list[tuple[str, str]]:
    """(report word, plain words) for each finding's term, once each."""
    pairs = {
        term: item.finding.plain
        for item in items
        if item.finding is not None and (term := report_word(item.finding))
    }
    return list(pairs.items())


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Arial,sans-serif;max-width:46em;margin:1.5em auto;
  padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin:.2em 0}.lead{font-size:1.05em;color:#444}
.finding{border-top:1px solid #ccc;padding:.8em 0;display:flex;gap:1em;flex-wrap:wrap;align-items:flex-start}
.pictures{display:flex;gap:.5em}.picture{position:relative;margin:0;width:150px;height:150px}
.picture img{width:150px;height:150px;display:block;background:#000}
.synthetic-label{position:absolute;left:0;right:0;top:6px;text-align:center;color:#fff;
  font-weight:700;letter-spacing:.08em;font-size:13px}
.synthetic-label span{background:#c00;padding:1px 6px;border-radius:3px}
.caption{flex:1;min-width:14em}.quote{color:#666;font-size:.9em}.made-by{color:#666;font-size:.8em}
.disclaimer{border:2px solid #c00;border-radius:6px;padding:.7em 1em;margin-top:1em;background:#fff5f5}
footer{color:#777;font-size:.85em;margin-top:1em}h2{font-size:1.15em;margin:1em 0 .3em}
.words{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;margin:0}.words dt{font-weight:700}
.words dd{margin:0}
@page{size:A4;margin:12mm}
"""

# The style block's hash, for the page that shows the handout in a frame: a blob: frame
# inherits the page's Content-Security-Policy, which allows this one block and no other.
STYLE_CSP_HASH = "sha256-" + base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()


def render_html(items: Sequence[HandoutItem]) -> str:
    """The handout as one self-contained HTML page (pictures inline as data URIs); each
    finding quotes its report sentence with identifiers scrubbed (``scrub_phi``)."""
    date, version = _facts()
    e = html.escape
    parts = []
    for item in items:
        figures = "".join(
            f'<figure class="picture"><img src="data:image/png;base64,'
            f'{base64.b64encode(path.read_bytes()).decode("ascii")}" alt="{e(_alt(item))}">'
            '<figcaption class="synthetic-label"><span>SYNTHETIC</span></figcaption></figure>'
            for path in item.images
        )
        pictures = f'<div class="pictures">{figures}</div>' if figures else ""
        quote = ""
        if item.finding is not None:
            # reports carry names, dates, record numbers; a section header ("FINDINGS:") is not the patient's
            quoted = _REDACTED_WORDS.sub("\u2026", scrub_phi(_SECTION_PREFIX.sub("", item.finding.sentence)))
            quote = f'<p class="quote">Your report says: &ldquo;{e(quoted)}&rdquo;</p>'
        made_by = f'<p class="made-by">{e(item.made_by)}</p>' if item.made_by else ""
        parts.append(
            f'<section class="finding">{pictures}<div class="caption"><p>{e(item.caption)}</p>'
            f"{quote}{made_by}</div></section>"
        )
    words = "".join(f"<dt>{e(term)}</dt><dd>{e(plain)}</dd>" for term, plain in glossary(items))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="radsynth {e(version)}">
<title>Understanding your scan report (with SYNTHETIC pictures)</title>
<style>{_CSS}</style></head>
<body>
<h1>Understanding your scan report</h1>
<p class="lead">This handout explains, in plain words, what your radiology report found. The
pictures are <strong>SYNTHETIC</strong>: made by a computer to show what such a finding can look
like. They are <strong>not your scans</strong>.</p>
{"".join(parts)}
<h2>Words in your report</h2>
<dl class="words">{words}</dl>
<div class="disclaimer" role="note"><strong>Please note.</strong> {e(DISCLAIMER)}</div>
<footer>Made on {e(date)} with radsynth {e(version)} (model-made pictures, marked synthetic in
each file).</footer>
</body></html>
"""


def _alt(item: HandoutItem) -> str:
    what = item.caption.removeprefix(PICTURE_PREFACE).strip()
    return f"SYNTHETIC computer-made picture, not your scan: {what}"


def _pixels(path: Path):
    """A written PNG as floats in [0, 1] (the marked pixels, 8- or 16-bit)."""
    from PIL import Image as PILImage

    with PILImage.open(path) as pic:
        array = np.asarray(pic, dtype=np.float32)
        top = 65535.0 if pic.mode.startswith("I") else 255.0
    return array / top


class _Page:
    """A top-down text cursor on an A4 matplotlib figure (units: figure fractions)."""

    def __init__(self, fig, left: float = 0.07, right: float = 0.93) -> None:
        self.fig, self.left, self.right, self.y = fig, left, right, 0.955
        self.width, self.height = fig.get_size_inches()

    def lines(self, text: str, size: float, width: float) -> list[str]:
        chars = int(width * self.width * 72 / (size * 0.6))  # ~0.6 em a character (DejaVu Sans)
        return textwrap.wrap(text, max(chars, 10)) or [""]

    def text_height(self, text: str, size: float, width: float) -> float:
        return len(self.lines(text, size, width)) * size * 1.3 / 72 / self.height

    def write(
        self,
        text: str,
        size: float = 10,
        x: float | None = None,
        width: float | None = None,
        gap=0.006,
        **style,
    ) -> None:
        """Draw ``text`` wrapped from the cursor down (``x``, ``width``: default the margins)."""
        x = self.left if x is None else x
        width = self.right - x if width is None else width
        self.fig.text(x, self.y, "\n".join(self.lines(text, size, width)), fontsize=size, va="top", **style)
        self.y -= self.text_height(text, size, width) + gap


CAPTION_PT = 9.5
PDF_MAX_PICTURED = 9  # more pictured findings than this: the rest are in the HTML only
_PICTURE_GAP_IN = 0.1  # between pictures, inches
_CARD_GAP = 0.02  # between columns and rows of findings, figure fraction


@dataclass(frozen=True)
class _Grid:
    """Where the pictured findings go: ``cols`` columns of cards, each with its caption
    above its pictures or ``beside`` them; ``side`` in inches; ``rows``: each row's height."""

    cols: int
    beside: bool
    side: float
    n: int
    rows: tuple[float, ...]

    def card(self, page: _Page) -> float:
        return (page.right - page.left - (self.cols - 1) * _CARD_GAP) / self.cols

    def pictures(self, page: _Page) -> float:
        return (self.n * self.side + (self.n - 1) * _PICTURE_GAP_IN) / page.width

    def text_width(self, page: _Page) -> float:
        return self.card(page) - self.pictures(page) - 0.015 if self.beside else self.card(page)


def _fit(page: _Page, items: list[HandoutItem], room: float, n: int, cols: int, beside: bool, side: float):
    grid = _Grid(cols, beside, side, n, ())
    if grid.pictures(page) > grid.card(page) or grid.text_width(page) < 0.3:  # captions at least ~2.5 in wide
        return None
    rows = []
    for r in range(0, len(items), cols):
        text = max(
            page.text_height(_card_text(it), CAPTION_PT, grid.text_width(page)) for it in items[r : r + cols]
        )
        rows.append(max(side / page.height, text) if beside else text + 0.012 + side / page.height)
    return replace(grid, rows=tuple(rows)) if sum(rows) + len(rows) * _CARD_GAP <= room else None


def _layout(page: _Page, items: list[HandoutItem], room: float, n: int) -> _Grid | None:
    """The grid that shows ``items`` (``n`` pictures each) largest in ``room`` (figure
    fraction), preferring fewer columns and captions above; None when none fits."""
    best = None
    for cols, beside in ((1, False), (1, True), (2, False), (2, True), (3, False)):
        for side in np.arange(3.0, 0.49, -0.05):
            grid = _fit(page, items, room, n, cols, beside, float(side))
            if grid is not None:
                if best is None or grid.side > best.side + 0.1:
                    best = grid
                break
    return best


def handout_figure(items: Sequence[HandoutItem]):
    """The one-page A4 handout as a matplotlib Figure (no pyplot: no global state).

    Findings with pictures fill a grid of 1-3 columns, whichever shows the pictures
    largest; with too many for one page the PDF shows one picture each, then at most
    ``PDF_MAX_PICTURED`` findings (the HTML has them all).
    """
    Figure = optional_import("matplotlib.figure", "education").Figure
    Rectangle = optional_import("matplotlib.patches", "education").Rectangle
    date, version = _facts()
    fig = Figure(figsize=A4_INCHES)
    page = _Page(fig)
    page.write("Understanding your scan report", 20, weight="bold", gap=0.012)
    page.write(
        "This handout explains in plain words what your radiology report found. The pictures are "
        "SYNTHETIC: a computer made them to show what such a finding can look like. "
        "They are NOT your scans.",
        10.5,
        color="#333",
        gap=0.02,
    )
    drawn = [item for item in items if item.images]
    words = [item for item in items if not item.images]
    terms = "; ".join(f"{term} = {plain}" for term, plain in glossary(items))
    width = page.right - page.left
    heading = page.text_height("x", 11, width) + 0.006
    # room kept under the pictures: the words-only list, the word list, the disclaimer box
    below = 0.19 + heading + page.text_height(terms, 9.5, width) + 0.006
    below += sum(page.text_height("\u2022 " + described(it.finding), 9.5, width) + 0.006 for it in words)
    below += heading + 0.01 if words else 0.0
    shown, grid = drawn[:PDF_MAX_PICTURED], None
    n = max((len(it.images) for it in drawn), default=1)
    while shown and grid is None:  # fewer pictures, then fewer findings, until they fit
        grid = _layout(page, shown, page.y - below, n)
        if grid is not None and grid.side < 1.2 and n > 1:
            grid = _layout(page, shown, page.y - below, 1) or grid
        if grid is None:
            n, shown = (1, shown) if n > 1 else (n, shown[:-1])
    for r, height in enumerate(grid.rows if grid else ()):
        top = page.y
        for c, item in enumerate(shown[r * grid.cols : (r + 1) * grid.cols]):
            x = page.left + c * (grid.card(page) + _CARD_GAP)
            page.y = top
            if grid.beside:
                _pictures(fig, item.images[: grid.n], x, top, grid.side)
                page.write(
                    _card_text(item),
                    CAPTION_PT,
                    x=x + grid.pictures(page) + 0.015,
                    width=grid.text_width(page),
                )
            else:
                page.write(_card_text(item), CAPTION_PT, x=x, width=grid.card(page), gap=0.012)
                _pictures(fig, item.images[: grid.n], x, page.y, grid.side)
        page.y = top - height - _CARD_GAP
    if len(drawn) > len(shown):
        page.write(f"Pictures of {len(drawn) - len(shown)} more finding(s) are in handout.html.", 9.5)
    if words:
        page.write("Also in your report (no picture of its own):", 11, weight="bold")
        for item in words:
            page.write("\u2022 " + described(item.finding)[:1].upper() + described(item.finding)[1:], 9.5)
        page.y -= 0.01
    page.write("Words in your report", 11, weight="bold")
    page.write(terms, 9.5, color="#333")
    fig.add_artist(
        Rectangle(
            (page.left, 0.06),
            width,
            0.115,
            transform=fig.transFigure,
            facecolor="#fff5f5",
            edgecolor="#c00",
            linewidth=1.5,
        )
    )
    page.y, page.left, page.right = 0.165, page.left + 0.015, page.right - 0.015
    page.write("Please note", 11, weight="bold", color="#c00", gap=0.008)
    page.write(DISCLAIMER, 9.5)
    fig.text(
        0.07,
        0.035,
        f"Made on {date} with radsynth {version}. Every picture is marked synthetic.",
        fontsize=8,
        color="#666",
    )
    return fig


def _card_text(item: HandoutItem) -> str:
    return f"{item.caption} {item.made_by}".strip()


def _pictures(fig, paths, x: float, top: float, side_in: float) -> None:
    """A row of square pictures from (x, top) down, each with a red SYNTHETIC label."""
    Rectangle = optional_import("matplotlib.patches", "education").Rectangle
    width, height = fig.get_size_inches()
    w, h = side_in / width, side_in / height
    for j, path in enumerate(paths):
        ax = fig.add_axes((x + j * (w + _PICTURE_GAP_IN / width), top - h, w, h))
        ax.imshow(_pixels(path), cmap="gray", vmin=0, vmax=1, interpolation="bilinear")
        ax.set_axis_off()
        ax.add_patch(Rectangle((0, 0), 1, 1, transform=ax.transAxes, fill=False, edgecolor="#c00", lw=2))
        ax.text(  # at the top: the pixels carry the word at the bottom (label_synthetic)
            0.5,
            0.96,
            "SYNTHETIC",
            transform=ax.transAxes,
            ha="center",
            va="top",
            color="white",
            fontsize=max(6.0, min(12.0, 5 * side_in)),
            weight="bold",
            bbox={"facecolor": "#c00", "edgecolor": "none", "pad": 1.5},
        )


def write_pdf(items: Sequence[HandoutItem], path: str | Path) -> Path:
    """The handout as a one-page A4 PDF, written atomically."""
    _, version = _facts()
    fig = handout_figure(items)
    metadata = {
        "Title": "Understanding your scan report (SYNTHETIC pictures)",
        "Subject": "Patient education handout; the pictures are synthetic, not the patient's images",
        "Keywords": "SYNTHETIC",
        "Creator": f"radsynth {version}",
    }
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="pdf", metadata=metadata)
    return Path(path)
