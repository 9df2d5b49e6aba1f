"""Restoration on contrasts the models never saw (issue 20, part 4): denoising and x2
super-resolution learnt from every real MR contrast at hand plus CT, against tuned classical
filters, on a contrast held out of training and on a scanner no corpus holds.

    .venv/bin/python benchmarks/restoration_real.py [--train] [--part denoise|sr2] [--ship]

- Models: ``configs/translate-denoise-real.yaml`` and ``configs/translate-sr-real.yaml``
  (T1, T1c, T2 of two glioma subjects, the Whole Brain Atlas MR slices, the demo corpus's MR
  and widest-window CT; ``--train`` builds the corpora and trains them where no model is
  there). Beside them run the models shipped when the script runs: the demo-trained ones
  before ``--ship`` replaces them (a later run compares the shipped model with itself).
- Validation: the T2 of TCGA-FG-6692, a subject neither recipe trains on, in a contrast they
  do. Chosen there and nowhere else: each model's checkpoint (every 500 steps), the
  CurvatureFlow time step and iterations, the non-local means bandwidth (a multiple of the
  noise level it estimates itself) and patch radius, the B-spline order.
- Test: the FLAIR of each glioma subject (the contrast held out of training) and a real
  Siemens Trio gradient-echo magnitude series (proton-density-like, 64 x 64 at 3 mm, from
  ``../shared/data/dicom_samples``). The glioma volumes are ``SLAB`` slices spread over the
  brain; every filter and model works slice by slice in 2D.
- Degradations and metrics as ``benchmarks/translation.py``: Rician noise with sigma 4 % of
  the volume's 99.5th percentile (seed 0); x2 area down-sampling in-plane; PSNR (against the
  reference's 99.5th percentile in the mask) / SSIM / MAE inside the body mask.
- Goal (issue 20): on every test volume, denoise at least 0.5 dB above the best classical
  filter and x2 SR at least 0.5 dB above B-spline.

``--part`` re-measures one task and keeps the other's figures from the JSON (the denoising
half, non-local means above all, is most of the ~12 minutes). ``--ship`` copies the chosen
checkpoints (of ``--part``'s task only, when given) into the shipped ``translate-denoise``
/ ``translate-sr`` folders with their cards. Prints tables and writes
``benchmarks/results/restoration_real.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from rich.console import Console
from rich.table import Table

from radsynth.bench.record import run_record
from radsynth.data.paired import find_cases
from radsynth.evaluate.translation import body_mask
from radsynth.io import Image, read_image
from radsynth.io.atomic import atomic_path
from radsynth.train.checkpoints import step_folders
from radsynth.translate import load_translator, translate_volume

sys.path.insert(0, str(Path(__file__).resolve().parent))
from translation import _as_written, _bicubic, _coarse, _metrics, _noisy  # noqa: E402  (same degradations)
from translation_cv import contrast_corpus, train_once  # noqa: E402  (the same glioma corpus)

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
RESULTS = ROOT / "benchmarks" / "results" / "restoration_real.json"
GLIOMAS = DATA / "brain_mri_multicontrast"
TRIO = DATA / "dicom_samples" / "series_mr_trio_gre_field_mapping_magnitude"
VALIDATION_SUBJECT = "TCGA-FG-6692"
SLAB = 12  # glioma slices per volume, spread over the slices holding at least half the largest brain
RECIPES = {"denoise": "translate-denoise-real", "sr2": "translate-sr-real"}
GOAL_DB = 0.5
CURVATURE_STEPS = (0.03125, 0.0625, 0.125, 0.25)
CURVATURE_ITERATIONS = (2, 5, 10, 20, 40)
NLM_BANDWIDTHS = (0.5, 1.0, 2.0, 4.0)  # x the estimated noise sigma
NLM_RADII = (1, 2)
BSPLINE_ORDERS = (1, 2, 3, 4, 5)


# --- volumes -------------------------------------------------------------------------------


def _slab(image: Image, count: int = SLAB) -> Image:
    """``count`` axial slices evenly spread over those whose brain (non-zero voxels: the
    volumes are skull-stripped) covers at least half the largest one's area."""
    area = (image.array != 0).sum(axis=(1, 2))
    wide = np.flatnonzero(area >= area.max() / 2)
    picked = wide[np.linspace(0, len(wide) - 1, count).round().astype(int)]
    return Image(
        image.array[picked].astype(np.float32), spacing=image.spacing, modality="MR", units=image.units
    )


def glioma(subject: str, contrast: str) -> Image:
    case = next(c for c in find_cases(GLIOMAS, "brats", lambda problem: None) if c.name == subject)
    return _slab(read_image(case.volumes[contrast]))


def trio() -> Image:
    image = read_image(TRIO)
    return Image(image.array.astype(np.float32), spacing=image.spacing, modality="MR", units=image.units)


def volumes() -> tuple[dict[str, Image], dict[str, Image]]:
    """(validation, test) volumes by name."""
    subjects = [c.name for c in find_cases(GLIOMAS, "brats", lambda problem: None)]
    validation = {f"T2 {VALIDATION_SUBJECT} (validation)": glioma(VALIDATION_SUBJECT, "t2")}
    test = {
        f"FLAIR {s}{' (validation subject)' if s == VALIDATION_SUBJECT else ''}": glioma(s, "flair")
        for s in subjects
    }
    test["Trio GRE magnitude (PD-like, 3 mm)"] = trio()
    return validation, test


def _fine(image: Image, factor: int = 2) -> Image:
    """The volume cropped in-plane to a multiple of ``factor`` x 8 (the models' strides)."""
    crop = tuple(s - s % (factor * 8) for s in image.array.shape[1:])
    return Image(
        image.array[:, : crop[0], : crop[1]], spacing=image.spacing, modality="MR", units=image.units
    )


# --- classical filters, slice by slice --------------------------------------------------------


def curvature_flow(noisy: Image, time_step: float, iterations: int) -> np.ndarray:
    import SimpleITK as sitk

    return np.stack(
        [
            sitk.GetArrayFromImage(sitk.CurvatureFlow(sitk.GetImageFromArray(s), time_step, iterations))
            for s in noisy.array
        ]
    )


def noise_sigma(image: np.ndarray) -> float:
    """Donoho's estimate of Gaussian noise: the median absolute finest diagonal (Haar)
    wavelet coefficient / 0.6745, what ``skimage.restoration.estimate_sigma`` computes."""
    h, w = (s - s % 2 for s in image.shape)
    a, b = image[0:h:2, 0:w:2], image[0:h:2, 1:w:2]
    c, d = image[1:h:2, 0:w:2], image[1:h:2, 1:w:2]
    return float(np.median(np.abs(a - b - c + d) / 2) / 0.6745)


def non_local_means(noisy: Image, bandwidth: float, radius: int) -> np.ndarray:
    """SimpleITK's patch-based denoiser (Rician model), its bandwidth ``bandwidth`` times
    the noise sigma estimated from each slice itself (no oracle)."""
    import SimpleITK as sitk

    out = []
    for s in noisy.array:
        sigma = max(noise_sigma(s), 1e-6)
        f = sitk.PatchBasedDenoisingImageFilter()
        f.SetNoiseModel(f.RICIAN)
        f.SetNumberOfIterations(1)
        f.SetPatchRadius(radius)
        f.SetKernelBandwidthEstimation(False)
        f.SetKernelBandwidthSigma(bandwidth * sigma)
        f.SetNoiseSigma(sigma)
        shift = max(0.0, -float(s.min()))  # the Rician model needs values >= 0
        out.append(sitk.GetArrayFromImage(f.Execute(sitk.GetImageFromArray(s + shift))) - shift)
    return np.stack(out)


def bspline(coarse: Image, shape: tuple[int, ...], order: int, factor: int = 2) -> np.ndarray:
    """Each coarse slice resampled onto the fine grid by a B-spline of ``order``; coarse
    pixel centres sit at the middle of the ``factor`` x ``factor`` fine pixels they average."""
    import SimpleITK as sitk

    interpolator = getattr(sitk, f"sitkBSpline{order}")
    reference = sitk.Image(shape[2], shape[1], sitk.sitkFloat32)
    out = []
    for s in coarse.array:
        small = sitk.GetImageFromArray(s.astype(np.float32))
        small.SetSpacing((float(factor), float(factor)))
        small.SetOrigin(((factor - 1) / 2,) * 2)
        resampled = sitk.Resample(small, reference, sitk.Transform(), interpolator, 0.0, sitk.sitkFloat32)
        out.append(sitk.GetArrayFromImage(resampled))
    return np.stack(out)


# --- models -----------------------------------------------------------------------------------


def run_model(task: str, folder: Path | None, degraded: Image) -> Image:
    """``folder``'s model (None: the shipped one) on the degraded volume."""
    return translate_volume(degraded, task, load_translator(task, folder))


def _psnr(prediction: np.ndarray, clean: Image) -> float:
    return float(_metrics(prediction, clean, body_mask(clean))["psnr"])


def choose_checkpoint(task: str, run: Path, clean: Image, degraded: Image) -> dict[str, Any]:
    rows = []
    for folder in step_folders(run):
        rows.append(
            {"step": int(folder.name[5:]), "psnr": _psnr(run_model(task, folder, degraded).array, clean)}
        )
        Console(stderr=True).print(f"{task} step {rows[-1]['step']}: {rows[-1]['psnr']:.2f} dB")
    if not rows:
        sys.exit(f"{run}: no checkpoints (train configs/{RECIPES[task]}.yaml, or pass --train)")
    return {"rows": rows, "chosen_step": max(rows, key=lambda r: r["psnr"])["step"]}


def tune(grid: list[dict[str, Any]], score) -> dict[str, Any]:
    rows = [{**g, "psnr": score(**g)} for g in grid]
    return {
        "rows": rows,
        "chosen": {k: v for k, v in max(rows, key=lambda r: r["psnr"]).items() if k != "psnr"},
    }


def validate(task: str, clean: Image, runs: dict[str, Path]) -> dict[str, Any]:
    """Every choice of ``task``'s part, made on the validation volume."""
    if task == "denoise":
        noisy = _noisy(clean)
        return {
            "curvature_flow": tune(
                [{"time_step": t, "iterations": n} for t in CURVATURE_STEPS for n in CURVATURE_ITERATIONS],
                lambda time_step, iterations: _psnr(curvature_flow(noisy, time_step, iterations), clean),
            ),
            "non_local_means": tune(
                [{"bandwidth": b, "radius": r} for b in NLM_BANDWIDTHS for r in NLM_RADII],
                lambda bandwidth, radius: _psnr(non_local_means(noisy, bandwidth, radius), clean),
            ),
            "denoise_checkpoint": choose_checkpoint("denoise", runs["denoise"], clean, noisy),
        }
    fine = _fine(clean)
    coarse = _coarse(fine, 2)
    return {
        "bspline": tune(
            [{"order": k} for k in BSPLINE_ORDERS],
            lambda order: _psnr(bspline(coarse, fine.array.shape, order), fine),
        ),
        "sr2_checkpoint": choose_checkpoint("sr2", runs["sr2"], fine, coarse),
    }


def _checkpoint(run: Path, step: int) -> Path:
    return next(f for f in step_folders(run) if int(f.name[5:]) == step)


def test(task: str, volume: Image, chosen: dict[str, Any], runs: dict[str, Path]) -> dict[str, Any]:
    """Every method of ``task`` (``denoise`` or ``sr2``) on one test volume."""
    if task == "denoise":
        mask = body_mask(volume)
        noisy = _noisy(volume)
        cf, nlm = chosen["curvature_flow"]["chosen"], chosen["non_local_means"]["chosen"]
        real = run_model(
            "denoise", _checkpoint(runs["denoise"], chosen["denoise_checkpoint"]["chosen_step"]), noisy
        )
        return {
            "noisy input": _metrics(noisy.array, volume, mask),
            "CurvatureFlow (tuned)": _metrics(curvature_flow(noisy, **cf), volume, mask),
            "non-local means (estimated sigma, tuned)": _metrics(non_local_means(noisy, **nlm), volume, mask),
            "demo-trained denoiser (the earlier default)": _metrics(
                run_model("denoise", None, noisy).array, volume, mask
            ),
            "radsynth denoise, real contrasts": _metrics(real.array, volume, mask),
            "real contrasts, as written (watermarked)": _metrics(_as_written(real, "denoise"), volume, mask),
        }
    fine = _fine(volume)
    mask = body_mask(fine)
    coarse = _coarse(fine, 2)
    real = run_model("sr2", _checkpoint(runs["sr2"], chosen["sr2_checkpoint"]["chosen_step"]), coarse)
    return {
        "bicubic": _metrics(_bicubic(coarse, fine.array.shape), fine, mask),
        "B-spline (tuned order)": _metrics(
            bspline(coarse, fine.array.shape, **chosen["bspline"]["chosen"]), fine, mask
        ),
        "demo-trained sr (the earlier default)": _metrics(run_model("sr2", None, coarse).array, fine, mask),
        "radsynth sr2, real contrasts": _metrics(real.array, fine, mask),
        "real contrasts, as written (watermarked)": _metrics(_as_written(real, "sr2"), fine, mask),
    }


def native_noise(volume: Image) -> float:
    """The volume's own noise (Donoho's estimate, median over slices) over the sigma added:
    near 0 for the smooth glioma volumes; where it is not, the reference is itself noisy and
    a denoiser that removes it is scored down."""
    added = 0.04 * float(np.percentile(volume.array, 99.5))  # translation._noisy's sigma
    return round(float(np.median([noise_sigma(s) for s in volume.array])) / added, 3)


def goals(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Per test volume: the real-contrast model's PSNR margin over the best classical method."""
    out = []
    for volume, tasks in results.items():
        for task, model, classical in (
            (
                "denoise",
                "radsynth denoise, real contrasts",
                ("CurvatureFlow (tuned)", "non-local means (estimated sigma, tuned)"),
            ),
            ("sr2", "radsynth sr2, real contrasts", ("B-spline (tuned order)",)),
        ):
            best = max(classical, key=lambda k: tasks[task][k]["psnr"])
            margin = tasks[task][model]["psnr"] - tasks[task][best]["psnr"]
            out.append(
                {
                    "volume": volume,
                    "task": task,
                    "against": best,
                    "margin_db": round(margin, 3),
                    "met": margin >= GOAL_DB,
                }
            )
    return out


def ship(runs: dict[str, Path], chosen: dict[str, Any], command: str, tasks: tuple[str, ...]) -> list[Path]:
    """The chosen checkpoints into the shipped folders of ``denoise`` and ``sr2``."""
    from radsynth import DEFAULT_FAMILY
    from radsynth.models.registry import SHIPPED_WEIGHTS
    from radsynth.translate.volume import task_spec

    written = []
    for task in tasks:
        step = chosen[f"{task}_checkpoint"]["chosen_step"]
        source = _checkpoint(runs[task], step)
        spec = task_spec(task)
        target = SHIPPED_WEIGHTS / (spec.family or DEFAULT_FAMILY) / spec.model
        target.mkdir(parents=True, exist_ok=True)
        card = json.loads((source / "card.json").read_text(encoding="utf-8"))
        card.setdefault("task_info", {})["checkpoint_chosen_by"] = (
            f"{command}: step {step}, the highest PSNR on the validation volume "
            f"(benchmarks/results/{RESULTS.name})"
        )
        shutil.copyfile(source / "model.safetensors", target / "model.safetensors")
        with atomic_path(target / "card.json") as tmp:
            tmp.write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
        written.append(target)
    return written


def prepare(train: bool) -> dict[str, Path]:
    """The runs' folders; with ``train``, first the corpora (built once) and the models
    missing there."""
    if train:
        from radsynth.data.atlas import build_atlas

        build_atlas(DATA / "harvard_aanlib_ct_mri", ROOT / "runs" / "atlas")
        contrast_corpus()
    runs = {}
    for task, name in RECIPES.items():
        raw = yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text(encoding="utf-8"))
        runs[task] = ROOT / raw["out"]
        if train:
            train_once(raw)
    return runs


def _table(title: str, section: dict[str, dict[str, Any]], task: str) -> Table:
    methods = list(next(iter(section.values()))[task])
    t = Table(title=title)
    t.add_column("volume")
    for m in methods:
        t.add_column(m)
    for volume, tasks in section.items():
        t.add_row(volume, *(f"{tasks[task][m]['psnr']:.2f} / {tasks[task][m]['ssim']:.3f}" for m in methods))
    return t


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="store_true", help="build the corpora and train missing models")
    parser.add_argument("--ship", action="store_true", help="ship the chosen checkpoints")
    parser.add_argument(
        "--part",
        choices=("all", *RECIPES),
        default="all",
        help="re-measure one task, keep the other's figures",
    )
    args = parser.parse_args(argv)
    tasks = tuple(RECIPES) if args.part == "all" else (args.part,)
    runs = prepare(args.train)
    validation, tests = volumes()
    kept = json.loads(RESULTS.read_text(encoding="utf-8")) if args.part != "all" else {}
    chosen, per_volume = kept.get("validation", {}), kept.get("test", {})
    earlier = kept.get("settings", {})
    # what measured each task's figures (a JSON from before --part: its one run did both)
    measured = earlier.get("measured") or {
        t: {k: earlier[k] for k in ("command", "git_commit", "date", "machine")} for t in RECIPES if earlier
    }
    for task in tasks:
        started = time.perf_counter()
        chosen |= validate(task, next(iter(validation.values())), runs)
        for name, volume in tests.items():
            per_volume.setdefault(name, {"native_noise_over_added": native_noise(volume)})[task] = test(
                task, volume, chosen, runs
            )
        record = run_record([_checkpoint(runs[task], chosen[f"{task}_checkpoint"]["chosen_step"])], argv)
        measured[task] = {**record, "seconds": round(time.perf_counter() - started, 1)}
    results = {
        "settings": {
            # the chosen checkpoints with their weights' hash (what --ship copies, byte for byte)
            **run_record(
                [_checkpoint(runs[t], chosen[f"{t}_checkpoint"]["chosen_step"]) for t in RECIPES], argv
            ),
            "measured": measured,
            "recipes": {task: f"configs/{name}.yaml" for task, name in RECIPES.items()},
            "validation_volumes": list(validation),
            "slab": SLAB,
            "noise": "Rician, sigma 4 % of the volume's 99.5th percentile, seed 0",
            "resolution_loss": "x2 area down-sampling in-plane",
            "goal_db": GOAL_DB,
        },
        "validation": chosen,
        "test": per_volume,
        "goals": goals(per_volume),
    }
    with atomic_path(RESULTS) as tmp:
        tmp.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    console = Console()
    console.print(_table("denoising, PSNR dB / SSIM in the body mask", per_volume, "denoise"))
    console.print(_table("x2 super-resolution, PSNR dB / SSIM in the body mask", per_volume, "sr2"))
    for g in results["goals"]:
        verdict = "met" if g["met"] else "missed"
        console.print(f"{g['task']} {g['volume']}: {g['margin_db']:+.2f} dB over {g['against']} ({verdict})")
    if args.ship:
        for folder in ship(runs, chosen, results["settings"]["command"], tasks):
            console.print(f"shipped {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
