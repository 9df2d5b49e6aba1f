"""Deepfake-defence figures: the watermark under attack, false alarms on real images, the
detector per generator (and on a generator it never saw), and verify's throughput.

    .venv/bin/python benchmarks/provenance.py            # prints tables, writes JSON
    .venv/bin/python benchmarks/provenance.py --quick    # 120 hosts instead of all

Watermark hosts: every real demo slice (64 px, the watermark's smallest size) and the
held-out LDM images of the detector set, each marked with a random payload. Attacks are
applied to the marked pixels with the file's metadata gone (the mark is all that is left).
The detector figures come from two runs of ``radsynth detect train`` (all generators, and
``--train-on gan,vae``), read back from their cards and re-scored here on marked images.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from rich.console import Console
from rich.table import Table

from radsynth.data.manifest import load_manifest, read_unit_image, resolve_manifest
from radsynth.io import Image, read_image, write_dicom, write_png
from radsynth.provenance import Payload, detect, embed
from radsynth.provenance.detector import SyntheticDetector, auroc
from radsynth.provenance.verify import AuditIndex, verify_paths

RESULTS = Path(__file__).parent / "results" / "provenance.json"
DETECTOR_SET = Path("runs/detector-set/manifest.jsonl")
CROSS_DETECTOR = Path("runs/detector-gan-vae/model")


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


def detector_figures(quick: bool) -> dict:
    shipped = SyntheticDetector.load()
    out = {"shipped": shipped.card.metrics.get("held_out")}
    if CROSS_DETECTOR.is_dir():
        out["trained_on_gan_vae"] = SyntheticDetector.load(CROSS_DETECTOR).card.metrics["held_out"]
    records = [r for r in load_manifest(DETECTOR_SET) if r.split == "test"]
    real = [read_unit_image(r.resolve(DETECTOR_SET)) for r in records if r.labels["generator"] == "real"]
    ldm = [read_unit_image(r.resolve(DETECTOR_SET)) for r in records if r.labels["generator"] == "ldm"]
    rng = np.random.default_rng(1)
    marked = [embed(a, Payload.of("ldm-demo-64", uuid.UUID(int=int(rng.integers(2**63))).hex)) for a in ldm]
    real_scores = shipped.score(real)
    out["ldm_marked_vs_unmarked"] = {
        "auroc_unmarked": auroc(shipped.score(ldm), real_scores),
        "auroc_marked": auroc(shipped.score(marked), real_scores),
        "auroc_marked_jpeg90": auroc(shipped.score([_jpeg(m, 90) for m in marked]), real_scores),
    }
    out["real_flagged_at_threshold"] = float(np.mean(real_scores >= shipped.threshold))
    return out


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
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    manifest = resolve_manifest("demo:64")
    records = load_manifest(manifest)
    if args.quick:
        records = [records[i] for i in np.linspace(0, len(records) - 1, 120).astype(int)]
    real = [read_unit_image(r.resolve(manifest)).astype(np.float64) for r in records]
    ldm = [
        read_unit_image(r.resolve(DETECTOR_SET)).astype(np.float64)
        for r in load_manifest(DETECTOR_SET)
        if r.split == "test" and r.labels["generator"] == "ldm"
    ]
    figures = {
        "watermark_real_slices": watermark_figures(real, args.seed),
        "watermark_ldm_outputs": watermark_figures(ldm, args.seed),
        "detector": detector_figures(args.quick),
        "verify": verify_throughput(real, 60 if args.quick else 200),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
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
    det = figures["detector"]
    table = Table(title="detector: held-out AUROC")
    table.add_column("trained on")
    for name in ("ldm", "gan", "vae"):
        table.add_column(name)
    for label, key in (("ldm + gan + vae", "shipped"), ("gan + vae", "trained_on_gan_vae")):
        if det.get(key):
            table.add_row(
                label, *[f"{det[key]['per_generator'][g]['auroc']:.3f}" for g in ("ldm", "gan", "vae")]
            )
    console.print(table)
    console.print(f"LDM AUROC unmarked / marked / marked+JPEG90: {det['ldm_marked_vs_unmarked']}")
    console.print(f"real held-out slices flagged at the threshold: {det['real_flagged_at_threshold']:.1%}")
    console.print(f"verify throughput (files/s): {figures['verify']['files_per_s']}")


if __name__ == "__main__":
    main()
