"""The shipped denoiser's checkpoint, chosen on validation volumes (issue 24: a default is
chosen on validation data; the test split gives only the final figure).

    .venv/bin/python benchmarks/restoration_checkpoint.py [--run runs/translate-denoise-demo-256]
                                                          [--apply]

Every checkpoint a ``radsynth train configs/translate-denoise-demo-256.yaml`` run kept
(``checkpoint_every`` 500, ``keep_checkpoints`` 10; the learning rate is constant after
warm-up, so a longer run's early checkpoints are a shorter run's) denoises the validation volumes with
the noise ``benchmarks/translation.py`` uses (Rician at 4 % of the 99.5th percentile for
MR, Poisson-Gaussian at 1,000 photons for CT; ``--draws`` noise draws each):

- the demo corpus' validation subject, the MNI152 2009a T1 (the same 6-slice slab);
- real DICOM files no split of the corpus holds (``../shared/data/dicom_samples``): a
  head CT (693_UNCI), a thorax CT (CT_small) and an abdominal MR (MR-SIEMENS) — the only
  CT the validation side has, since the demo's validation split is one brain MR.

Rule: the checkpoint with the highest mean PSNR gain over the noisy input, each volume
weighted alike (so CT and MR count equally). The test volumes (pyradiomics lung2 and
brain2) are not read here. ``--apply`` copies the chosen checkpoint into the shipped
``translate-denoise`` folder, its card recording the choice (``task_info.checkpoint_chosen_by``)
and keeping the benchmark figures, which ``benchmarks/translation.py --cards`` then
re-measures. Prints a table and writes ``benchmarks/results/restoration_checkpoint.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from radsynth.bench.record import run_record
from radsynth.evaluate.translation import body_mask
from radsynth.io import Image, read_image
from radsynth.io.atomic import atomic_path
from radsynth.models.registry import shipped
from radsynth.train.checkpoints import step_folders
from radsynth.translate import load_translator, translate_volume

sys.path.insert(0, str(Path(__file__).resolve().parent))
from translation import _metrics, _mni152_slab, _noisy  # noqa: E402  (the same noise and metrics)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "restoration_checkpoint.json"
DICOM_SAMPLES = ROOT.parent / "shared" / "data" / "dicom_samples" / "single"
OUT_OF_CORPUS = {  # name -> (file, modality): real files no split of the demo corpus holds
    "CT head (693_UNCI)": ("693_UNCI.dcm", "CT"),
    "CT thorax (CT_small)": ("CT_small.dcm", "CT"),
    "MR abdomen (MR-SIEMENS)": ("MR-SIEMENS-DICOM-WithOverlays.dcm", "MR"),
}


def validation_volumes() -> dict[str, Image]:
    volumes = {"MR brain (MNI152 T1, demo validation subject)": _mni152_slab()}
    for name, (file, modality) in OUT_OF_CORPUS.items():
        image = read_image(DICOM_SAMPLES / file)
        array = image.array.astype(np.float32).reshape(1, *image.array.shape[-2:])
        spacing = (*image.spacing[:2], 1.0)  # one slice: its thickness does not matter in 2D
        volumes[name] = Image(array, spacing=spacing, modality=modality, units=image.units)
    return volumes


def gains(folder: Path, volumes: dict[str, Image], noisy: dict[str, list[Image]]) -> dict[str, Any]:
    """PSNR / SSIM of one checkpoint's output per volume, and its gain over the noisy input
    (mean over the noise draws)."""
    model = load_translator("denoise", folder)
    out = {}
    for name, clean in volumes.items():
        mask = body_mask(clean)
        rows = []
        for draw in noisy[name]:
            before = _metrics(draw.array, clean, mask)
            after = _metrics(translate_volume(draw, "denoise", model).array, clean, mask)
            rows.append((after["psnr"], after["ssim"], after["psnr"] - before["psnr"]))
        psnr, ssim, gain = np.mean(rows, axis=0)
        out[name] = {"psnr": float(psnr), "ssim": float(ssim), "psnr_gain_db": float(gain)}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "translate-denoise-demo-256")
    parser.add_argument("--draws", type=int, default=2, help="noise draws per volume (seeds 0..draws-1)")
    parser.add_argument("--apply", action="store_true", help="ship the chosen checkpoint")
    args = parser.parse_args(argv)
    folders = step_folders(args.run)
    if not folders:
        sys.exit(f"{args.run}: no checkpoints (train configs/translate-denoise-demo-256.yaml first)")
    volumes = validation_volumes()
    noisy = {name: [_noisy(v, seed) for seed in range(args.draws)] for name, v in volumes.items()}
    rows = []
    for folder in folders:
        per_volume = gains(folder, volumes, noisy)
        step = int(folder.name.split("-")[1])
        mean_gain = float(np.mean([v["psnr_gain_db"] for v in per_volume.values()]))
        rows.append({"step": step, "mean_psnr_gain_db": mean_gain, "volumes": per_volume})
        Console(stderr=True).print(f"step {step}: mean gain {mean_gain:.3f} dB")
    best = max(rows, key=lambda r: r["mean_psnr_gain_db"])
    results = {
        "settings": {
            **run_record(folders, argv),
            "run": str(args.run),
            "draws": args.draws,
            "noise": "as benchmarks/translation.py: Rician 4 % of the 99.5th percentile (MR), "
            "Poisson-Gaussian 1,000 photons (CT)",
            "rule": "highest mean PSNR gain over the noisy input, each validation volume weighted alike",
            "validation_volumes": list(volumes),
        },
        "rows": rows,
        "chosen_step": best["step"],
    }
    with atomic_path(RESULTS) as tmp:
        tmp.write_text(json.dumps(results, indent=2) + "\n")
    Console().print(table(results))
    if args.apply:
        ship(args.run, best["step"], results["settings"]["command"])


def ship(run: Path, step: int, command: str) -> None:
    """Copy checkpoint ``step`` into the shipped folder; the card keeps the shipped
    benchmark figures until ``translation.py --cards`` re-measures them."""
    source = next(f for f in step_folders(run) if int(f.name.split("-")[1]) == step)
    target = shipped("translate-denoise")
    card = json.loads((source / "card.json").read_text())
    steps = [int(f.name.split("-")[1]) for f in step_folders(run)]
    card.setdefault("task_info", {})["checkpoint_chosen_by"] = (
        f"{command}: step {step} of the checkpoints {', '.join(map(str, steps))}, on validation "
        f"volumes (benchmarks/results/{RESULTS.name})"
    )
    benchmark = json.loads((target / "card.json").read_text()).get("metrics", {}).get("benchmark")
    if benchmark is not None:
        card.setdefault("metrics", {})["benchmark"] = benchmark
    shutil.copyfile(source / "model.safetensors", target / "model.safetensors")
    with atomic_path(target / "card.json") as tmp:
        tmp.write_text(json.dumps(card, indent=2) + "\n")


def table(results: dict[str, Any]) -> Table:
    names = results["settings"]["validation_volumes"]
    t = Table(title="denoiser checkpoints on validation volumes: PSNR gain over the noisy input (dB)")
    t.add_column("step")
    for name in names:
        t.add_column(name)
    t.add_column("mean")
    for row in results["rows"]:
        chosen = " (chosen)" if row["step"] == results["chosen_step"] else ""
        t.add_row(
            f"{row['step']}{chosen}",
            *(f"{row['volumes'][n]['psnr_gain_db']:+.2f}" for n in names),
            f"{row['mean_psnr_gain_db']:+.2f}",
        )
    return t


if __name__ == "__main__":
    main()
