"""``report.html`` (one self-contained page: tables, charts and image grids inlined as
base64 PNG) and ``metrics.json`` from an :class:`~radsynth.evaluate.run.Evaluation`.

Both files are rendered in memory first and each is written atomically (temporary file,
then rename), so a failed evaluation leaves no report and a reader never sees half of one.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from radsynth.evaluate import plots
from radsynth.evaluate.run import Evaluation
from radsynth.io.atomic import write_text_atomic

REPORT = "report.html"
METRICS = "metrics.json"
GRID = 32

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f4f4}td{white-space:nowrap}td:first-child,th:first-child{text-align:left}
.note{color:#555;font-size:.92em}.skip{color:#a33;white-space:normal}.gain{color:#1a7f37;font-weight:bold}
.row{display:flex;gap:1.5em;flex-wrap:wrap;align-items:flex-start}
img{max-width:100%}
"""


def write_report(evaluation: Evaluation, folder: str | Path) -> tuple[Path, Path]:
    """Write ``metrics.json`` and ``report.html`` into ``folder`` (made if missing)."""
    folder = Path(folder)
    metrics_text = json.dumps(json_ready(evaluation.metrics), indent=2, sort_keys=True) + "\n"
    page = render(evaluation)
    write_text_atomic(folder / METRICS, metrics_text)
    write_text_atomic(folder / REPORT, page)
    return folder / REPORT, folder / METRICS


def render(evaluation: Evaluation) -> str:
    """The whole HTML page."""
    m = evaluation.metrics
    sections = [
        _summary(m),
        _fidelity(m["fidelity"], evaluation),
        _diversity(m["diversity"]),
        _adherence(m["adherence"]),
        _privacy(m["privacy"], evaluation),
        _membership(m["membership"]),
        _utility(m["utility"]),
    ]
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>radsynth evaluation</title>"
        f"<style>{STYLE}</style></head><body><h1>radsynth evaluation report</h1>"
        + "".join(sections)
        + _settings(m)
        + "</body></html>\n"
    )


def fmt(value: Any, digits: int = 3) -> str:
    """``value [low, high]`` for an interval record, the reason for a skipped one."""
    if isinstance(value, dict) and "skipped" in value:
        return f"<span class='skip'>{html.escape(value['skipped'])}</span>"
    if isinstance(value, dict) and "value" in value:
        return f"{value['value']:.{digits}g} [{value['low']:.{digits}g}, {value['high']:.{digits}g}]"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return html.escape("-" if value is None else str(value))


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _summary(m: dict[str, Any]) -> str:
    sets = m["sets"]
    rows = [
        [
            name,
            str(s["n"]),
            f"{s['size'][0]}x{s['size'][1]}",
            html.escape(str(s["modalities"])),
            str(s["groups"]),
        ]
        for name, s in sets.items()
    ]
    return "<h2>Sets</h2>" + _table(["set", "images", "size", "modalities", "subjects / prompts"], rows)


def _fidelity(f: dict[str, Any], ev: Evaluation) -> str:
    prdc = f["prdc"]
    rows = [
        ["FRD (radiomics, z-scored against real)", fmt(f["frd"])],
        ["FID (domain encoder)", fmt(f["fid_domain"])],
        ["KID (domain encoder)", fmt(f["kid_domain"])],
    ]
    if "skipped" in prdc:
        rows.append(["precision / recall / density / coverage", fmt(prdc)])
    else:
        rows += [[name, fmt(prdc[name])] for name in ("precision", "recall", "density", "coverage")]
    chart = "" if "skipped" in prdc else f"<img src='{plots.bars_with_ci(prdc, 'value (95 % CI)')}'>"
    grids = (
        "<div class='row'>"
        + _grid(f"real (first {GRID})", ev.real.images[:GRID])
        + _grid(f"synthetic (first {GRID})", ev.synthetic.images[:GRID])
        + "</div>"
    )
    note = (
        "<p class='note'>Lower FRD/FID/KID is closer to the real set. Precision: share of synthetic images "
        "inside the real manifold (realism); recall: share of real images inside the synthetic manifold "
        "(coverage of variety); 95 % bootstrap intervals.</p>"
    )
    return "<h2>Fidelity</h2>" + _table(["metric", "value [95 % CI]"], rows) + note + chart + grids


def _diversity(d: dict[str, Any]) -> str:
    dup = d["duplicates"]
    rows = [
        ["MS-SSIM within a prompt", fmt(d["ms_ssim_within_prompt"])],
        ["MS-SSIM across prompts", fmt(d["ms_ssim_across_prompts"])],
        [
            "duplicate pairs (correlation > threshold)",
            fmt(dup) if "skipped" in dup else f"{dup['pairs']} ({dup['share_of_images']:.1%} of images)",
        ],
    ]
    note = (
        "<p class='note'>Lower MS-SSIM = more diverse; near 1 within a prompt means the generator "
        "repeats itself.</p>"
    )
    return "<h2>Diversity</h2>" + _table(["metric", "value [95 % CI]"], rows) + note


def _adherence(a: dict[str, Any]) -> str:
    rows, figures = [], []
    for name, result in a["synthetic"].items():
        reference = a["real_reference"].get(name, {})
        rows.append([name, fmt(result["accuracy"]), str(result["n"]), fmt(reference.get("accuracy"))])
        if result["confusion"]:
            figures.append(f"<img src='{plots.confusion_figure(result['confusion'], name)}'>")
    note = (
        "<p class='note'>The attribute reader (trained on real images only) reads each generated image; "
        "accuracy over images whose prompt states the attribute. The last column is the same reader on the "
        "real held-out images: the ceiling this reader allows.</p>"
    )
    header = ["attribute", "synthetic accuracy", "n", "reader on real held-out"]
    return (
        "<h2>Adherence</h2>" + _table(header, rows) + note + "<div class='row'>" + "".join(figures) + "</div>"
    )


def _privacy(p: dict[str, Any], ev: Evaluation) -> str:
    if "skipped" in p:
        return "<h2>Privacy</h2>" + fmt(p)
    rows = [
        ["synthetic images flagged as copies", f"{p['share_synthetic_flagged']:.1%} ({p['n_flagged']})"],
        ["training images copied", f"{p['share_training_copied']:.1%}"],
        ["nearest-training correlation: median / p99 / max", _summary_cells(p["correlation"])],
    ]
    reference = p.get("reference_held_out_real")
    if reference:
        rows.append(["held-out real (no copies) median / p99 / max", _summary_cells(reference)])
    series = {"synthetic": p["nearest_correlations"]}
    if "reference_correlations" in p:
        series["held-out real"] = p["reference_correlations"]
    chart = plots.histogram(series, p["threshold"], "correlation with the nearest training image")
    worst = p["worst_pairs"]
    pairs = plots.pairs_figure(
        ev.synthetic.images[[w["synthetic"] for w in worst]],
        ev.train.images[[w["training"] for w in worst]],
        [f"r = {w['correlation']:.3f}" for w in worst],
    )
    note = (
        f"<p class='note'>Copy threshold: pixel correlation &gt; {p['threshold']} (images normalised to "
        "zero mean "
        "and unit variance, no registration). Why: see radsynth.evaluate.privacy; the held-out real images, "
        "which cannot be copies, show what another person's anatomy scores.</p>"
    )
    return (
        "<h2>Privacy</h2>"
        + _table(["measure", "value"], rows)
        + note
        + f"<div class='row'><img src='{chart}'><div><h3>closest pairs</h3><img src='{pairs}'></div></div>"
    )


def _grid(title: str, images: np.ndarray) -> str:
    return f"<div><h3>{html.escape(title)}</h3><img src='{plots.image_grid(images)}'></div>"


def _settings(m: dict[str, Any]) -> str:
    settings = json.dumps(json_ready({k: m[k] for k in ("options", "models")}), indent=2)
    return f"<h2>Settings</h2><pre>{html.escape(settings)}</pre>"


def _summary_cells(s: dict[str, float]) -> str:
    return f"{s['median']:.3f} / {s['p99']:.3f} / {s['max']:.3f}"


def _membership(mi: dict[str, Any]) -> str:
    if "skipped" in mi:
        return "<h2>Membership inference</h2>" + fmt(mi)
    rows = [[name, fmt(mi[name])] for name in ("ldm_denoising", "vae_reconstruction") if name in mi]
    note = (
        f"<p class='note'>Loss-threshold attack on {html.escape(str(mi['model_id']))}: "
        f"{mi['members']} training "
        f"images vs {mi['non_members']} held-out real images. AUC 0.5 = no leak. Held-out images come from "
        "other subjects, so a distribution shift raises the AUC too: an upper bound on the leak.</p>"
    )
    return "<h2>Membership inference</h2>" + _table(["attack", "AUC [95 % CI]"], rows) + note


def _utility(u: dict[str, Any]) -> str:
    if "skipped" in u:
        return "<h2>Utility</h2>" + fmt(u)
    if "regimes" in u:
        return _utility_study(u)
    rows = [
        [
            name,
            fmt(r.get("accuracy", r)),
            fmt(r.get("balanced_accuracy", "")),
            fmt(r.get("auroc", "")),
            fmt(r.get("n_train")),
        ]
        for name, r in u["arms"].items()
    ]
    scored = {name: r["auroc"] for name, r in u["arms"].items() if "auroc" in r}
    chart = f"<img src='{plots.bars_with_ci(scored, 'AUROC (95 % CI)', chance=0.5)}'>" if scored else ""
    note = (
        f"<p class='note'>Task: {html.escape(u['attribute'])} ({', '.join(map(html.escape, u['classes']))})"
        + (f" within {html.escape(str(u['within']))}" if u.get("within") else "")
        + "; "
        f"test counts {u['test_counts']} (held-out real subjects); training counts per arm "
        f"{html.escape(str(u['counts']))}. "
        "transfer: the CNN starts from the domain encoder (pretrained on another task). shuffled_labels: "
        "real images with permuted labels, the chance level on this test set.</p>"
    )
    header = ["arm", "accuracy", "balanced accuracy", "AUROC", "training images"]
    return "<h2>Utility</h2>" + _table(header, rows) + note + chart


def _utility_study(u: dict[str, Any]) -> str:
    """``utility_study``'s regimes: one table per test set (regime x arm) and one chart of
    AUROC per arm, a colour per regime."""
    regimes = u["regimes"]
    ran = [r for r in regimes.values() if "arms" in r]
    external = list(dict.fromkeys(name for r in ran for name in r["external_counts"]))
    header = [
        "regime",
        "arm",
        "AUROC [95 % CI]",
        "AUROC gain vs real only [95 % CI]",
        "balanced accuracy",
        "sensitivity at 90 % specificity",
        "training images",
    ]
    tables = "".join(
        (f"<h3>External test set: {html.escape(test)}</h3>" if test else "")
        + _table(header, _study_rows(regimes, test))
        for test in ["", *external]
    )
    if not ran:
        return "<h2>Utility</h2>" + tables
    scored = {
        name: {arm: a["auroc"] for arm, a in r["arms"].items() if "auroc" in a}
        for name, r in regimes.items()
        if "arms" in r
    }
    chart = plots.points_by_group(scored, "AUROC (95 % CI)", chance=0.5)
    first = ran[0]
    note = (
        f"<p class='note'>Task: {html.escape(u['attribute'])} "
        f"({', '.join(map(html.escape, first['classes']))}); test counts {first['test_counts']} "
        "(held-out real patients). Regime: the share of the training patients each arm learns from "
        "(the synthetic images are what --synthetic gave, the same in every regime unless each regime's "
        "generator saw only its own patients, as benchmarks/utility_cxr.py does). Arms: real only; "
        "real+synthetic (x2: twice as many synthetic images); real+duplicates: as many extra images as "
        "real+synthetic adds, drawn again from the real ones (the control for a larger set); "
        "real+augmentation: classical augmentation; synthetic only; pretrain:synthetic: pretrained on "
        "synthetic, fine-tuned on real; shuffled_labels: real images with permuted labels, chance on this "
        "test set; transfer: starts from the domain encoder. Intervals: 95 % bootstrap over the test "
        f"images; values are means over {first['settings'].get('seeds', '-')} training seeds (each seed's "
        "value is in metrics.json). Gain: paired difference to real only on the same test images, "
        "<span class='gain'>green</span> when its whole interval lies above 0.</p>"
    )
    return "<h2>Utility</h2>" + tables + note + f"<img src='{chart}' alt='AUROC per arm and regime'>"


def _study_rows(regimes: dict[str, Any], test: str) -> list[list[str]]:
    """Rows of the study table for the internal test set (``test == ""``) or an external one."""
    rows = []
    for regime, report in regimes.items():
        label = html.escape(regime) + (f" ({report['subjects']} patients)" if "subjects" in report else "")
        if "arms" not in report:
            rows.append([label, fmt(report), "", "", "", "", ""])
            continue
        for arm, record in report["arms"].items():
            scored = record["external"][test] if test and "external" in record else record
            if "auroc" not in scored:
                rows.append([label, html.escape(arm), fmt(scored), "", "", "", ""])
                continue
            gain = scored.get("vs_real", {}).get("auroc")
            cell = fmt(gain) if gain else ""
            if gain and gain["low"] > 0:
                cell = f"<span class='gain'>{cell}</span>"
            rows.append(
                [
                    label,
                    html.escape(arm),
                    fmt(scored["auroc"]),
                    cell,
                    fmt(scored["balanced_accuracy"]),
                    fmt(scored.get("sensitivity_at_90_specificity")),
                    fmt(record["n_train"]),
                ]
            )
    return rows


def json_ready(value: Any) -> Any:
    """JSON-ready: numpy scalars and arrays to Python, NaN to None."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
