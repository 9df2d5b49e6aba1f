"""The report's pictures as ``data:image/png;base64`` URIs, so ``report.html`` is one
self-contained file: matplotlib charts (Agg backend, no display) and image grids drawn
straight from the [0, 1] pixels with Pillow."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np

from radsynth.extras import optional_import


def _pyplot():
    matplotlib = optional_import("matplotlib", "eval")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure_uri(fig) -> str:
    """A matplotlib figure as a PNG data URI (the figure is closed)."""
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return _png_uri(buffer.getvalue())


def image_grid(images: np.ndarray, columns: int = 8, scale: int = 2, gap: int = 2) -> str:
    """[0, 1] images (N, H, W) as one grey grid, each pixel drawn ``scale`` x ``scale``."""
    from PIL import Image as PILImage

    n, h, w = images.shape
    rows = max(1, -(-n // columns))
    cols = min(columns, max(n, 1))
    canvas = np.ones((rows * (h + gap) - gap, cols * (w + gap) - gap), np.uint8) * 255
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        canvas[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = np.round(
            np.clip(image, 0, 1) * 255
        )
    picture = PILImage.fromarray(canvas).resize((canvas.shape[1] * scale, canvas.shape[0] * scale), 0)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return _png_uri(buffer.getvalue())


def pairs_figure(left: np.ndarray, right: np.ndarray, captions: Sequence[str]) -> str:
    """Side-by-side pairs (synthetic | nearest training image), one row each."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(left), 2, figsize=(3.2, 1.6 * len(left)), squeeze=False)
    for row, (a, b, text) in enumerate(zip(left, right, captions, strict=True)):
        for ax, image, title in ((axes[row, 0], a, "synthetic"), (axes[row, 1], b, "nearest training")):
            ax.imshow(image, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title, fontsize=8)
        axes[row, 0].set_ylabel(text, fontsize=7)
    return figure_uri(fig)


def histogram(series: dict[str, Sequence[float]], threshold: float, xlabel: str) -> str:
    """Overlaid histograms with a dashed line at ``threshold``."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 2.8))
    bins = np.linspace(min(min(v) for v in series.values() if len(v)) - 0.01, 1.0, 40)
    for name, values in series.items():
        ax.hist(values, bins=bins, alpha=0.55, label=f"{name} (n={len(values)})", density=True)
    ax.axvline(threshold, color="k", linestyle="--", linewidth=1, label=f"copy threshold {threshold}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    return figure_uri(fig)


def bars_with_ci(values: dict[str, dict[str, float]], ylabel: str, chance: float | None = None) -> str:
    """One bar per name with its ``[low, high]`` interval as an error bar."""
    plt = _pyplot()
    names = list(values)
    mid, errors = _error_bars([values[n] for n in names])
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * len(names)), 2.8))
    ax.bar(range(len(names)), mid, yerr=errors, capsize=4, color="#4c78a8")
    if chance is not None:
        ax.axhline(chance, color="k", linestyle="--", linewidth=1, label="chance")
        ax.legend(fontsize=7)
    ax.set_xticks(range(len(names)), names, rotation=25, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    return figure_uri(fig)


def points_by_group(
    values: dict[str, dict[str, dict[str, float]]], ylabel: str, chance: float | None = None
) -> str:
    """``{group: {name: interval}}`` as points with error bars: x = name, one colour per
    group, side by side; a name missing from a group (a skipped arm) leaves a gap."""
    plt = _pyplot()
    names = list(dict.fromkeys(name for group in values.values() for name in group))
    width = 0.7 / max(len(values), 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.0 * len(names)), 3.2))
    for k, (group, records) in enumerate(values.items()):
        shown = [name for name in names if name in records]
        mid, errors = _error_bars([records[name] for name in shown])
        x = np.asarray([names.index(name) for name in shown]) + (k - (len(values) - 1) / 2) * width
        ax.errorbar(x, mid, yerr=errors, fmt="o", capsize=3, markersize=4, label=group)
    if chance is not None:
        ax.axhline(chance, color="k", linestyle="--", linewidth=1, label="chance")
    ax.set_xticks(range(len(names)), names, rotation=25, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=7)
    return figure_uri(fig)


def _error_bars(records: Sequence[dict[str, float]]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Interval records as ``(values, [below, above])`` for matplotlib's ``yerr``."""
    mid = np.asarray([r["value"] for r in records], float)
    # a subsampling interval need not contain the full-set value: draw what lies beyond it as 0
    low = np.maximum(mid - np.asarray([r["low"] for r in records], float), 0)
    high = np.maximum(np.asarray([r["high"] for r in records], float) - mid, 0)
    return mid, [low, high]


def confusion_figure(confusion: dict[str, dict[str, int]], title: str) -> str:
    """A confusion matrix (rows: what the prompt asked; columns: what the reader saw)."""
    plt = _pyplot()
    asked = sorted(confusion)
    read = sorted({k for row in confusion.values() for k in row} | set(asked))
    matrix = np.asarray([[confusion[a].get(r, 0) for r in read] for a in asked])
    fig, ax = plt.subplots(figsize=(0.9 * len(read) + 1.5, 0.6 * len(asked) + 1.2))
    ax.imshow(matrix, cmap="Blues")
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(read)), read, fontsize=8)
    ax.set_yticks(range(len(asked)), asked, fontsize=8)
    ax.set_xlabel("read back")
    ax.set_ylabel("asked")
    ax.set_title(title, fontsize=9)
    return figure_uri(fig)
