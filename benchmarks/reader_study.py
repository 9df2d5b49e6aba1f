"""A scripted reader study (issue 23) end to end through the service's API: create a study
of real demo chest CT slices and images of the shipped demo model, let two scripted
readers take it, report it. Written to ``benchmarks/results/reader_study.json``.

Real: the demo corpus's axial chest CT slices in the lung window, test split (held-out
patients). Synthetic: ``radsynth generate "axial chest CT, lung window"`` with the card's
sampling defaults. ``-n`` images, half each, drawn and shuffled by ``--seed``.

The readers are programs, not people, so the figures test the machinery and set the
floor a person should beat: ``chance`` answers at random (seeded); ``detector`` answers
with the shipped detector's P(synthetic) on the very pixels a reader is served (8-bit
PNG), "synthetic" at >= 0.5, its confidence the distance from 0.5 in five bins.

    .venv/bin/python benchmarks/reader_study.py -n 40 --seed 0
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from radsynth.bench.record import run_record

RESULTS = Path(__file__).parent / "results" / "reader_study.json"
RADSYNTH = str(Path(sys.executable).parent / "radsynth")
PROMPT = "axial chest CT, lung window"


def real_manifest(folder: Path) -> Path:
    """The demo corpus's lung-window chest CT slices of the test split (held-out
    patients), as a manifest in ``folder`` naming each image by its absolute path."""
    from dataclasses import replace

    from radsynth.data.manifest import load_manifest, resolve_manifest, write_manifest

    source = resolve_manifest("demo:64")
    keep = [r for r in load_manifest(source) if r.split == "test" and r.text.startswith(PROMPT)]
    return write_manifest([replace(r, path=str(r.resolve(source))) for r in keep], folder / "real.jsonl")


def detector_call(detector, png: bytes) -> tuple[str, int]:
    from PIL import Image

    codes = np.asarray(Image.open(io.BytesIO(png)), np.float32) / 255
    p = float(detector.score([codes])[0])
    confidence = 1 + min(int(abs(p - 0.5) * 10), 4)  # |p - 0.5| in 0.1-wide bins: 1..5
    return ("synthetic" if p >= 0.5 else "real"), confidence


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    from fastapi.testclient import TestClient

    from radsynth.provenance.detector import SyntheticDetector
    from radsynth.serve.app import create_app
    from radsynth.serve.settings import ServeSettings
    from radsynth.serve.study import Studies, create_study, study_report

    with tempfile.TemporaryDirectory(prefix="reader-study-") as tmp:
        work = Path(tmp)
        manifest = real_manifest(work)
        synthetic = work / "synthetic"
        started = time.perf_counter()
        cmd = [
            RADSYNTH,
            "generate",
            PROMPT,
            "-n",
            str(args.n // 2),
            "--seed",
            str(args.seed),
            "-o",
            str(synthetic),
        ]
        subprocess.run(cmd, check=True, capture_output=True)
        generate_s = time.perf_counter() - started
        settings = ServeSettings(data_dir=work / "data")
        app = create_app(settings, start_workers=False)
        store = app.state.store
        admin, admin_secret = store.create_token("owner", ["admin"])
        detector = SyntheticDetector.load()
        started = time.perf_counter()
        study_id = create_study(
            store, settings.data_dir, admin.id, manifest, synthetic, args.n, args.seed, detector=detector
        )
        create_s = time.perf_counter() - started
        rng = np.random.default_rng(args.seed)
        latencies = []
        with TestClient(app) as client:
            owner = {"Authorization": f"Bearer {admin_secret}"}
            for name in ("chance", "detector"):
                made = client.post(
                    f"/api/studies/{study_id}/readers", json={"name": name}, headers=owner
                ).json()
                reader = {"Authorization": f"Bearer {made['token']}"}
                step = client.get(f"/api/studies/{study_id}/next", headers=reader).json()
                while not step["done"]:
                    png = client.get(f"/api/studies/{study_id}/images/{step['item']}", headers=reader).content
                    if name == "chance":
                        answer, confidence = str(rng.choice(["real", "synthetic"])), int(rng.integers(1, 6))
                    else:
                        answer, confidence = detector_call(detector, png)
                    body = {
                        "item": step["item"],
                        "answer": answer,
                        "confidence": confidence,
                        "response_ms": 0,
                    }
                    sent = time.perf_counter()
                    step = client.post(f"/api/studies/{study_id}/answers", json=body, headers=reader).json()
                    latencies.append(time.perf_counter() - sent)
            report = study_report(Studies(store, settings.data_dir), study_id, seed=args.seed)
            html = client.get(f"/api/studies/{study_id}/report", headers=owner)
            assert html.status_code == 200
    names = report.pop("reader_names")
    report["readers"] = {names[k]: v for k, v in report["readers"].items()}
    result = {
        **run_record(argv=argv),
        "settings": {
            "n": args.n,
            "seed": args.seed,
            "real": f"demo:64 test split, '{PROMPT}' slices",
            "synthetic": f"radsynth generate '{PROMPT}' (demo-ct-mr-64, card defaults)",
        },
        "timings": {
            "generate_s": round(generate_s, 2),
            "create_s": round(create_s, 2),
            "answer_p50_ms": round(1000 * float(np.median(latencies)), 1),
        },
        "pooled": report["pooled"],
        "readers": report["readers"],
        "agreement": report["agreement"],
        "items_fooling_half_or_more": sum(i["fooled"] >= 0.5 for i in report["items"]),
        "items": len(report["items"]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("timings", "agreement")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
