"""The watermark's strengths, chosen on validation images (issue 24: defaults are chosen on
validation data; ``benchmarks/provenance.py`` gives the final figures on every slice).

    .venv/bin/python benchmarks/watermark_strength.py [--cxr 150]

Two strengths, each the weakest that still does its job, since a stronger mark only costs
image quality (on 128-px chest X-rays 1 % chips can be seen in flat regions):

- **Generated images** (``radsynth.provenance.watermark.DEFAULT_STRENGTH``). Hosts: the
  validation split of both corpora (every demo validation slice at 64 px, the
  watermark's smallest size; ``--cxr`` chest X-rays of validation patients at 128 px),
  marked with random payloads and attacked as ``benchmarks/provenance.py`` does. Rule:
  the weakest strength whose mark is found on at least 99 % of hosts after every attack
  strength can answer (all but the hard window, where saturation erases the mark, and the
  off-centre crop, where the crop search and not the strength decides: on chest X-rays it
  stays under 92 % at every strength tried), and whose payload (the output id that links
  the file to its audit entry) reads back on at least 95 % after the lossless saves
  (16-bit PNG, 8-bit PNG, DICOM). Each host group must pass.
- **Restoration outputs** (``radsynth.translate.files.RESTORATION_STRENGTH``): a
  patient's own scan, cleaned, where the mark must cost little of what restoration gains.
  Hosts: the demo's validation MR (MNI152 T1) and three real DICOM files no corpus split
  holds (``validation_volumes``) denoised by the shipped model, marked as ``radsynth
  translate`` writes them. Rule: the weakest strength whose mark is found on every MR
  validation slice as written (NIfTI keeps the floats) and after a DICOM round trip (CT
  relative to its window is reported; there the file relies on metadata, UIDs and the
  audit log when the mark is too weak, as ``translate`` records).

Prints both tables and writes ``benchmarks/results/watermark_strength.json``; the tests
check the constants equal the chosen strengths.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from radsynth.bench.record import run_record
from radsynth.data.manifest import load_manifest, read_unit_image, resolve_manifest
from radsynth.evaluate.translation import body_mask
from radsynth.io import Image, read_image
from radsynth.io.atomic import atomic_path
from radsynth.models.registry import shipped
from radsynth.provenance import Payload, detect, embed
from radsynth.translate import load_translator, translate_volume
from radsynth.translate.files import watermark_range

sys.path.insert(0, str(Path(__file__).resolve().parent))
from translation import _metrics, _mni152_slab, _noisy  # noqa: E402

from provenance import _dicom, attacks  # noqa: E402  (the same attacks as the final figures)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "watermark_strength.json"
CXR_MANIFEST = ROOT / "runs" / "cxr-128" / "manifest.jsonl"
OUTPUT_STRENGTHS = (0.005, 0.0075, 0.01, 0.015, 0.02)
RESTORATION_STRENGTHS = (0.001, 0.0015, 0.0025, 0.005, 0.01)
LOSSLESS = ("none (16-bit PNG, metadata stripped)", "8-bit PNG", "DICOM re-save")
BEYOND_STRENGTH = ("window (x1.4, clips 4 % / 25 %)", "crop 80 % (off centre)")
DICOM_SAMPLES = ROOT.parent / "shared" / "data" / "dicom_samples" / "single"
OUT_OF_CORPUS = {  # name -> (file, modality): real files no split of the demo corpus holds
    "CT head (693_UNCI)": ("693_UNCI.dcm", "CT"),
    "CT thorax (CT_small)": ("CT_small.dcm", "CT"),
    "MR abdomen (MR-SIEMENS)": ("MR-SIEMENS-DICOM-WithOverlays.dcm", "MR"),
}
SHARE = 0.99  # found: the mark's first job is to say "synthetic"
PAYLOAD_SHARE = 0.95  # the output id: without it verify still reports the mark


def validation_volumes() -> dict[str, Image]:
    """The restoration hosts: the demo's validation MR slab and the real DICOM files above."""
    volumes = {"MR brain (MNI152 T1, demo validation subject)": _mni152_slab()}
    for name, (file, modality) in OUT_OF_CORPUS.items():
        image = read_image(DICOM_SAMPLES / file)
        array = image.array.astype(np.float32).reshape(1, *image.array.shape[-2:])
        spacing = (*image.spacing[:2], 1.0)  # one slice: its thickness does not matter in 2D
        volumes[name] = Image(array, spacing=spacing, modality=modality, units=image.units)
    return volumes


def validation_hosts(n_cxr: int, seed: int) -> dict[str, list[np.ndarray]]:
    """Unit-range validation images: every demo validation slice, ``n_cxr`` chest X-rays."""
    manifest = resolve_manifest("demo:64")
    demo = [r for r in load_manifest(manifest) if r.split == "val"]
    hosts = {"demo (64 px)": [read_unit_image(r.resolve(manifest)).astype(np.float64) for r in demo]}
    if CXR_MANIFEST.is_file():
        cxr = [r for r in load_manifest(CXR_MANIFEST) if r.split == "val"]
        picks = np.random.default_rng(seed).choice(len(cxr), min(n_cxr, len(cxr)), replace=False)
        hosts["chest X-ray (128 px)"] = [
            read_unit_image(cxr[i].resolve(CXR_MANIFEST)).astype(np.float64) for i in sorted(picks)
        ]
    return hosts


def output_rows(hosts: list[np.ndarray], strength: float, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    payloads = [Payload.of("validation", uuid.UUID(int=int(rng.integers(2**63))).hex) for _ in hosts]
    marked = [embed(h, p, strength=strength) for h, p in zip(hosts, payloads, strict=True)]
    psnr = [10 * np.log10(1 / np.mean((m - h) ** 2)) for m, h in zip(marked, hosts, strict=True)]
    rows = {}
    for name, attack in attacks(seed).items():
        found = [detect(attack(m)) for m in marked]
        rows[name] = {
            "detected": float(np.mean([d.found for d in found])),
            "payload_recovered": float(
                np.mean([d.payload == p for d, p in zip(found, payloads, strict=True)])
            ),
        }
    return {"psnr_db": {"mean": float(np.mean(psnr)), "min": float(np.min(psnr))}, "attacks": rows}


def output_ok(row: dict[str, Any]) -> bool:
    attacks_ = row["attacks"]
    return all(v["detected"] >= SHARE for k, v in attacks_.items() if k not in BEYOND_STRENGTH) and all(
        attacks_[k]["payload_recovered"] >= PAYLOAD_SHARE for k in LOSSLESS
    )


def restoration_rows(seed: int) -> dict[str, Any]:
    model = load_translator("denoise")
    payload = Payload.of("validation", uuid.UUID(int=seed).hex)
    out: dict[str, Any] = {}
    for name, clean in validation_volumes().items():
        denoised = translate_volume(_noisy(clean, seed), "denoise", model)
        mask = body_mask(clean)
        value_range = watermark_range(denoised, "denoise")
        before = _metrics(denoised.array, clean, mask)["psnr"]
        out[name] = {"modality": clean.modality, "denoised_psnr": before, "strengths": {}}
        for strength in RESTORATION_STRENGTHS:
            marked = embed(denoised.array, payload, value_range, strength)
            found = [detect(s).found and detect(_dicom(s)).found for s in marked]
            out[name]["strengths"][str(strength)] = {
                "found_share": float(np.mean(found)),
                "psnr_cost_db": before - _metrics(marked, clean, mask)["psnr"],
            }
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cxr", type=int, default=150, help="chest X-ray validation hosts")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    hosts = validation_hosts(args.cxr, args.seed)
    outputs = {
        str(s): {group: output_rows(images, s, args.seed) for group, images in hosts.items()}
        for s in OUTPUT_STRENGTHS
    }
    ok = [s for s in OUTPUT_STRENGTHS if all(output_ok(r) for r in outputs[str(s)].values())]
    restoration = restoration_rows(args.seed)
    mr = [v for v in restoration.values() if v["modality"] == "MR"]
    reads = [
        s for s in RESTORATION_STRENGTHS if all(v["strengths"][str(s)]["found_share"] == 1.0 for v in mr)
    ]
    results = {
        "settings": {
            **run_record([shipped("translate-denoise")], argv),
            "seed": args.seed,
            "hosts": {group: len(images) for group, images in hosts.items()},
            "output_rule": f"weakest strength found on >= {SHARE:.0%} of each group's hosts after every "
            f"attack but {' and '.join(BEYOND_STRENGTH)}, payload >= {PAYLOAD_SHARE:.0%} after "
            f"{', '.join(LOSSLESS)}",
            "restoration_rule": "weakest strength found on every MR validation slice as written and after "
            "a DICOM round trip",
        },
        "outputs": outputs,
        "restoration": restoration,
        "chosen": {"outputs": min(ok) if ok else None, "restoration": min(reads) if reads else None},
    }
    with atomic_path(RESULTS) as tmp:
        tmp.write_text(json.dumps(results, indent=2) + "\n")
    console = Console()
    console.print(output_table(results))
    console.print(restoration_table(results))


def output_table(results: dict[str, Any]) -> Table:
    t = Table("strength", "hosts", "PSNR mean / min", "found (worst answerable attack)", "payload (lossless)")
    for strength, groups in results["outputs"].items():
        for group, row in groups.items():
            found = min(v["detected"] for k, v in row["attacks"].items() if k not in BEYOND_STRENGTH)
            payload = min(row["attacks"][k]["payload_recovered"] for k in LOSSLESS)
            chosen = " (chosen)" if float(strength) == results["chosen"]["outputs"] else ""
            t.add_row(
                f"{float(strength):.2%}{chosen}",
                group,
                f"{row['psnr_db']['mean']:.1f} / {row['psnr_db']['min']:.1f}",
                f"{found:.1%}",
                f"{payload:.1%}",
            )
    return t


def restoration_table(results: dict[str, Any]) -> Table:
    t = Table(
        "volume", *(f"{float(s):.2%}" for s in RESTORATION_STRENGTHS), title="found share / PSNR cost (dB)"
    )
    for name, row in results["restoration"].items():
        cells = [row["strengths"][str(s)] for s in RESTORATION_STRENGTHS]
        t.add_row(name, *(f"{c['found_share']:.0%} / {c['psnr_cost_db']:.2f}" for c in cells))
    return t


if __name__ == "__main__":
    main()
