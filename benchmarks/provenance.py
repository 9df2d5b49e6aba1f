"""Deepfake-defence figures: the watermark under attack, false alarms on real images, the
detector on real sources and generators it never saw, verify on real DICOM files from
elsewhere, and verify's throughput.

    .venv/bin/python benchmarks/provenance.py                  # every part: tables + JSON
    .venv/bin/python benchmarks/provenance.py --part detector  # one part (others kept)
    .venv/bin/python benchmarks/provenance.py --quick          # 120 hosts instead of all

Watermark hosts: every real demo slice (64 px, the watermark's smallest size) and 120
outputs of the demo LDM from held-out captions (20 x 6), each marked with a random
payload. Attacks are applied to the marked pixels with the file's metadata gone (the mark
is all that is left). The detector figures are those ``radsynth detect train`` wrote into
the shipped detector's card (leave one source out, leave one generator out, the test
split at the calibrated threshold), with the LDM hosts re-scored marked and unmarked.
``verify_real_files``: every file of ``../shared/data/dicom_samples`` and of pydicom's
own test files through ``verify`` with the detector on: verdicts, and why the detector
was not asked where it was not.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from rich.console import Console
from rich.table import Table

from radsynth import DEFAULT_FAMILY
from radsynth.bench.record import run_record
from radsynth.data.manifest import load_manifest, read_unit_image, resolve_manifest
from radsynth.generate import load_pipeline
from radsynth.io import Image, read_image, write_dicom, write_png, write_text_atomic
from radsynth.models.registry import checkpoint_folder
from radsynth.provenance import Payload, detect, embed
from radsynth.provenance.detector import SyntheticDetector, auroc
from radsynth.provenance.verify import AuditIndex, verify_paths

RESULTS = Path(__file__).parent / "results" / "provenance.json"
PARTS = ("watermark", "detector", "verify_real_files", "verify")


def _resize(a: np.ndarray, factor: float) -> np.ndarray:
    side = max(8, round(a.shape[0] * factor))
    return np.asarray(PILImage.fromarray(a.astype(np.float32), "F").resize((side, side)), dtype=np.float64)


def _jpeg(a: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    PILImage.fromarray((np.clip(a, 0, 1) * 255).round().astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return np.asarray(PILImage.open(buf), dtype=np.float64) / 255


def _dicom(a: np.ndarray) -> np.ndarray:
    """Round trip through a DICOM file written by radsynth's writer, pixels only."""
    with tempfile.TemporaryDirectory() as tmp:
        path = write_dicom(Image(a.astype(np.float32), modality="MR"), Path(tmp) / "x.dcm")
        return read_image(path).array.astype(np.float64)


def _crop(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    side = round(a.shape[0] * 0.8)
    y, x = rng.integers(0, a.shape[0] - side + 1, 2)
    return a[y : y + side, x : x + side]


def attacks(seed: int = 0) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    rng = np.random.default_rng(seed)
    return {
        "none (16-bit PNG, metadata stripped)": lambda a: np.round(a * 65535) / 65535,
        "8-bit PNG": lambda a: np.round(a * 255) / 255,
        "DICOM re-save": _dicom,
        "window (x1.4, clips 4 % / 25 %)": lambda a: np.clip(a * 1.4 - 0.05, 0, 1),
        "resize 0.5x": lambda a: _resize(a, 0.5),
        "resize 2x": lambda a: _resize(a, 2.0),
        "crop 80 % (off centre)": lambda a: _crop(a, rng),
        "JPEG 90": lambda a: _jpeg(a, 90),
        "JPEG 75": lambda a: _jpeg(a, 75),
        "Gaussian noise (1 % of range)": lambda a: np.clip(a + rng.normal(0, 0.01, a.shape), 0, 1),
    }


def watermark_figures(hosts: list[np.ndarray], seed: int) -> dict:
    rng = np.random.default_rng(seed)
    payloads = [Payload.of("ldm-demo-64", uuid.UUID(int=int(rng.integers(2**63))).hex) for _ in hosts]
    started = time.perf_counter()
    marked = [embed(h, p) for h, p in zip(hosts, payloads, strict=True)]
    embed_s = (time.perf_counter() - started) / len(hosts)
    psnr = np.array([10 * np.log10(1 / np.mean((m - h) ** 2)) for m, h in zip(marked, hosts, strict=True)])
    rows = {}
    for name, attack in attacks(seed).items():
        found = [detect(attack(m)) for m in marked]
        rows[name] = {
            "detected": float(np.mean([d.found for d in found])),
            "bit_accuracy": float(np.mean([d.bit_accuracy(p) for d, p in zip(found, payloads, strict=True)])),
            "payload_recovered": float(
                np.mean([d.payload == p for d, p in zip(found, payloads, strict=True)])
            ),
            "payload_wrong": float(
                np.mean([d.payload not in (None, p) for d, p in zip(found, payloads, strict=True)])
            ),
        }
    started = time.perf_counter()
    clean = [detect(h) for h in hosts]
    detect_s = (time.perf_counter() - started) / len(hosts)
    return {
        "hosts": len(hosts),
        "psnr_db": {
            "mean": float(psnr.mean()),
            "min": float(psnr.min()),
            "p10": float(np.percentile(psnr, 10)),
        },
        "attacks": rows,
        "false_positive_rate_unmarked": float(np.mean([d.found for d in clean])),
        "max_score_unmarked": float(max(d.score for d in clean)),
        "seconds_per_embed": embed_s,
        "seconds_per_detect": detect_s,
    }


def ldm_hosts(n_captions: int = 20, per_caption: int = 6) -> list[np.ndarray]:
    """Demo LDM outputs (unmarked, in [0, 1]) from held-out captions (val + test subjects)."""
    records = load_manifest(resolve_manifest("demo:64"))
    captions = sorted({r.text for r in records if r.split != "train"})
    picks = np.random.default_rng(0).choice(len(captions), n_captions, replace=False)
    pipeline = load_pipeline(DEFAULT_FAMILY, "ldm")
    images = [
        im for k, i in enumerate(picks) for im in pipeline.generate(captions[i], n=per_caption, seed=1000 * k)
    ]
    return [np.clip(im.array, 0, 1).astype(np.float64) for im in images]


def detector_figures(ldm: list[np.ndarray], real: list[np.ndarray]) -> dict:
    """The shipped card's calibration and test figures, and whether marking changes a score."""
    shipped = SyntheticDetector.load()
    metrics = shipped.card.metrics
    rng = np.random.default_rng(1)
    marked = [embed(a, Payload.of("ldm-demo-64", uuid.UUID(int=int(rng.integers(2**63))).hex)) for a in ldm]
    real_scores = shipped.score(real)
    return {
        "model": shipped.model_id,
        "threshold": shipped.threshold,
        "real_sources": shipped.card.task_info.get("real_sources"),
        "generators": shipped.card.task_info.get("generators"),
        "calibration": metrics.get("calibration"),
        "test_split": metrics.get("held_out"),
        "ldm_marked_vs_unmarked": {
            "auroc_unmarked": auroc(shipped.score(ldm), real_scores),
            "auroc_marked": auroc(shipped.score(marked), real_scores),
            "auroc_marked_jpeg90": auroc(shipped.score([_jpeg(m, 90) for m in marked]), real_scores),
            "real_n": len(real),
        },
    }


def verify_real_files() -> dict:
    """Every file of the shared DICOM samples and of pydicom's test files through verify."""
    import pydicom

    from radsynth.data.cxr import default_root

    folders = [default_root() / "dicom_samples", Path(pydicom.__file__).parent / "data" / "test_files"]
    files = sorted(p for folder in folders for p in folder.rglob("*") if p.is_file() and p.suffix != ".md")
    verdicts = verify_paths(files, detector=SyntheticDetector.load(), audit=AuditIndex())
    counts = Counter(v.verdict for v in verdicts)
    not_asked = Counter(
        str(v.evidence["detector"]["reason"]).split(":")[0]
        for v in verdicts
        if v.evidence.get("detector") and not v.evidence["detector"]["applies"]
    )
    asked = [v for v in verdicts if v.evidence.get("detector", {}).get("applies")]
    return {
        "files": len(files),
        "verdicts": dict(sorted(counts.items())),
        "detector_asked": len(asked),
        "detector_not_asked": dict(not_asked.most_common()),
        "suspect": {Path(v.file).name: v.evidence["detector"]["p_synthetic"] for v in asked if v.suspect},
        "largest_p_real": max((v.evidence["detector"]["p_synthetic"] for v in asked), default=None),
        "synthetic_marked": sorted(Path(v.file).name for v in verdicts if v.verdict == "synthetic-marked"),
    }


def verify_throughput(hosts: list[np.ndarray], n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        for i, a in enumerate(hosts[:n]):
            write_png(Image(embed(a, Payload(i, 1))), Path(tmp) / f"{i:04d}.png", bits=16)
        audit = AuditIndex(Path(tmp) / "no-log.jsonl")
        rates = {}
        for label, detector in (("marking + watermark", None), ("+ detector", SyntheticDetector.load())):
            started = time.perf_counter()
            verdicts = verify_paths([tmp], detector=detector, audit=audit)
            rates[label] = len(verdicts) / (time.perf_counter() - started)
    return {"files": n, "files_per_s": rates}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="120 real hosts (a smoke run)")
    parser.add_argument("--part", choices=PARTS, action="append", help="only these parts (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    parts = args.part or list(PARTS)
    manifest = resolve_manifest("demo:64")
    records = load_manifest(manifest)
    if args.quick:
        records = [records[i] for i in np.linspace(0, len(records) - 1, 120).astype(int)]
    real = [read_unit_image(r.resolve(manifest)).astype(np.float64) for r in records]
    figures = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    ldm = ldm_hosts() if {"watermark", "detector"} & set(parts) else []
    if "watermark" in parts:
        figures["watermark_real_slices"] = watermark_figures(real, args.seed)
        figures["watermark_ldm_outputs"] = watermark_figures(ldm, args.seed)
    if "detector" in parts:
        held_out = [a for a, r in zip(real, records, strict=True) if r.split != "train"]
        figures["detector"] = detector_figures(ldm, held_out)
    if "verify_real_files" in parts:
        figures["verify_real_files"] = verify_real_files()
    if "verify" in parts:
        figures["verify"] = verify_throughput(real, 60 if args.quick else 200)
    record = run_record([checkpoint_folder(DEFAULT_FAMILY, kind) for kind in ("ldm", "detector")])
    figures["runs"] = figures.get("runs", {}) | {part: record for part in parts}  # each part's own run
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(RESULTS, json.dumps(figures, indent=2) + "\n")
    _print(figures)


def _print(figures: dict) -> None:
    console = Console()
    table = Table(title="watermark: detected / payload recovered (bit accuracy)")
    table.add_column("attack")
    hosts = ("watermark_real_slices", "watermark_ldm_outputs")
    for key in hosts:
        table.add_column(f"{key.removeprefix('watermark_')} (n={figures[key]['hosts']})")
    for attack in figures[hosts[0]]["attacks"]:
        cells = []
        for key in hosts:
            row = figures[key]["attacks"][attack]
            cells.append(
                f"{row['detected']:.0%} / {row['payload_recovered']:.0%} ({row['bit_accuracy']:.1%})"
                + (f", wrong {row['payload_wrong']:.1%}" if row["payload_wrong"] else "")
            )
        table.add_row(attack, *cells)
    table.add_row(
        "PSNR marked vs unmarked (mean, min)",
        *[f"{figures[k]['psnr_db']['mean']:.1f} dB, {figures[k]['psnr_db']['min']:.1f} dB" for k in hosts],
    )
    table.add_row(
        "false positives on unmarked",
        *[
            f"{figures[k]['false_positive_rate_unmarked']:.2%} (max z {figures[k]['max_score_unmarked']:.1f})"
            for k in hosts
        ],
    )
    console.print(table)
    det = figures.get("detector", {})
    calibration = det.get("calibration") or {}
    table = Table(title=f"detector: each real source left out once (threshold {det.get('threshold')})")
    for column in ("left out", "images", "FPR at threshold", "AUROC vs synthetic", "largest P"):
        table.add_column(column)
    for name, row in (calibration.get("leave_one_source_out") or {}).items():
        table.add_row(name, str(row["n"]), f"{row['fpr']:.1%}", f"{row['auroc']:.3f}", f"{row['max_p']:.4f}")
    for name, row in (calibration.get("leave_one_generator_out") or {}).items():
        table.add_row(
            f"generator {name}", str(row["n"]), f"caught {row['caught']:.1%}", f"{row['auroc']:.3f}", ""
        )
    console.print(table)
    if det.get("ldm_marked_vs_unmarked"):
        console.print(f"LDM AUROC unmarked / marked / marked+JPEG90: {det['ldm_marked_vs_unmarked']}")
    if figures.get("verify_real_files"):
        console.print(f"verify on real DICOM files from elsewhere: {figures['verify_real_files']}")
    if figures.get("verify"):
        console.print(f"verify throughput (files/s): {figures['verify']['files_per_s']}")


if __name__ == "__main__":
    main()
