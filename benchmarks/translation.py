"""Translation figures on held-out real volumes, against classical baselines.

    .venv/bin/python benchmarks/translation.py      # prints tables, writes JSON

- Denoising: the pyradiomics brain2 T1 MR and lung2 chest CT (the demo's two test
  subjects; the restorers' checkpoints were chosen on a validation volume by
  ``benchmarks/restoration_real.py``), MR with Rician noise, CT with Poisson-Gaussian; the shipped
  denoiser against non-local means (SimpleITK's patch-based denoiser with the matching
  noise model, told the true noise level) and the noisy input. PSNR / SSIM / MAE inside the body mask.
- Super-resolution x2 / x4: the same volumes area-averaged onto a 2x / 4x coarser grid;
  the shipped model against bicubic interpolation, on the original grid.
- MR -> CT (unpaired: no registered CT exists): MNI152 slices translated; fidelity to
  real head CT (radiomics Fréchet distance, bone window), structure kept from the MR
  (normalised mutual information, edge correlation), and the HU histogram of the body
  (air / fat / soft tissue / bone) against the real InVesalius head CT.
- T1 -> PD on the one registered pair the corpus has (ITK BrainWeb slice, the model's own
  training pair: a demonstration of paired training, not a held-out figure).
- Seconds per 256x256 slice for each task, and per volume (the whole MNI152 T1, 189
  slices of 233 x 197), on this CPU.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from radsynth.bench.record import run_record
from radsynth.data import sources
from radsynth.data.degrade import poisson_gaussian, rician
from radsynth.data.normalise import WINDOWS, apply_window
from radsynth.data.paired import TRANSLATION_HU_RANGE
from radsynth.evaluate.translation import body_mask, domain_fidelity, paired_metrics, structure_metrics
from radsynth.io import Image, read_image
from radsynth.translate import load_translator, translate_volume

RESULTS = Path(__file__).parent / "results" / "translation.json"
SLICES = 6
HU_BANDS = {
    "air (< -500)": (-5000, -500),
    "fat (-150..-30)": (-150, -30),
    "soft (-30..100)": (-30, 100),
    "bone (> 300)": (300, 5000),
}


def _volumes() -> dict[str, Image]:
    """The restoration test volumes: SLICES central slices of the demo's test MR and CT."""
    from radsynth.data.demo import cache_root

    found = {s.key: s for s in sources.pyradiomics_sources(cache_root() / "sources")}
    out = {}
    for name, key, modality in (
        ("MR (brain2)", "pyradiomics-brain2", "MR"),
        ("CT (lung2)", "pyradiomics-lung2", "CT"),
    ):
        image = found[key].load().image
        mid = image.array.shape[0] // 2
        out[name] = Image(
            image.array[mid - SLICES // 2 : mid + SLICES // 2].astype(np.float32),
            spacing=image.spacing,
            modality=modality,
            units="HU" if modality == "CT" else "",
        )
    return out


def _mni152_slab() -> Image:
    """SLICES slices of the MNI152 T1 (the demo's validation subject) around its middle."""
    mr = _mni152()
    mid = mr.array.shape[0] // 2
    return Image(
        mr.array[mid - 20 : mid + 20 : 40 // SLICES].astype(np.float32), spacing=mr.spacing, modality="MR"
    )


def _mni152() -> Image:
    image = sources.nilearn_sources()[0].load().image
    return Image(image.array.astype(np.float32), spacing=image.spacing, modality="MR")


def _noisy(image: Image, rng_seed: int = 0) -> Image:
    import torch

    torch.manual_seed(rng_seed)
    x = torch.from_numpy(image.array)[:, None]
    if image.modality == "CT":
        lo, hi = TRANSLATION_HU_RANGE
        unit = ((x - lo) / (hi - lo)).clamp(0, 1)
        noisy = poisson_gaussian(unit, torch.full((x.shape[0],), 1000.0), 0.005) * (hi - lo) + lo
    else:
        top = float(np.percentile(image.array, 99.5))
        noisy = rician(x / top, torch.full((x.shape[0],), 0.04)) * top
    return image.with_array(noisy[:, 0].numpy().astype(np.float32))


def _nlm(noisy: Image, clean: Image) -> Image:
    """Non-local means (SimpleITK's patch-based denoiser) told the true noise level, the
    standard deviation of noisy - clean inside the body: an oracle setting no real user
    has, so the baseline is at its best. (Estimating the bandwidth itself, or iterating
    with the default kernel, it came out below the noisy input on these volumes.)"""
    import SimpleITK as sitk

    sigma = float(np.std((noisy.array - clean.array)[body_mask(clean)]))
    f = sitk.PatchBasedDenoisingImageFilter()
    f.SetNoiseModel(f.POISSON if noisy.modality == "CT" else f.RICIAN)
    f.SetNumberOfIterations(2)
    f.SetPatchRadius(2)
    f.SetKernelBandwidthEstimation(False)
    f.SetKernelBandwidthSigma(sigma)
    f.SetNoiseSigma(sigma)
    shift = max(0.0, -float(noisy.array.min()))  # the noise models need values >= 0 (HU are not)
    out = [sitk.GetArrayFromImage(f.Execute(sitk.GetImageFromArray(s + shift))) - shift for s in noisy.array]
    return noisy.with_array(np.stack(out).astype(np.float32))


def _coarse(image: Image, factor: int) -> Image:
    import torch

    down = torch.nn.functional.interpolate(
        torch.from_numpy(image.array)[:, None], scale_factor=1 / factor, mode="area"
    )
    spacing = (image.spacing[0] * factor, image.spacing[1] * factor, image.spacing[2])
    shift = np.array([(factor - 1) / 2 * image.spacing[0], (factor - 1) / 2 * image.spacing[1], 0.0])
    origin = np.asarray(image.origin) + np.asarray(image.direction) @ shift
    return Image(
        down[:, 0].numpy(),
        spacing=spacing,
        origin=tuple(origin),
        direction=image.direction,
        modality=image.modality,
        units=image.units,
    )


def _bicubic(coarse: Image, shape: tuple[int, ...]) -> np.ndarray:
    import torch

    up = torch.nn.functional.interpolate(
        torch.from_numpy(coarse.array)[:, None], size=shape[1:], mode="bicubic", align_corners=False
    )
    return up[:, 0].numpy()


def _metrics(prediction: np.ndarray, reference: Image, mask: np.ndarray) -> dict:
    ct = reference.modality == "CT"
    return paired_metrics(
        prediction,
        reference.array,
        mask,
        modality="CT" if ct else None,
        data_range=None if ct else float(np.percentile(reference.array[mask], 99.5)),
    )


def _as_written(translated: Image, task: str) -> np.ndarray:
    """The pixels ``radsynth translate`` writes: the output with its invisible watermark."""
    from radsynth.provenance import SyntheticFacts
    from radsynth.provenance.watermark import embed_image
    from radsynth.translate.files import watermark_range, watermark_strength

    payload = SyntheticFacts(model_id="benchmark", prompt=task, task="translate").payload
    marked = embed_image(translated, payload, watermark_range(translated, task), watermark_strength(task))
    return marked.array


def denoising(volumes: dict[str, Image]) -> dict:
    model = load_translator("denoise")
    out = {}
    for name, clean in volumes.items():
        mask = body_mask(clean)
        noisy = _noisy(clean)
        denoised = translate_volume(noisy, "denoise", model)
        out[name] = {
            "noisy input": _metrics(noisy.array, clean, mask),
            "non-local means (oracle sigma)": _metrics(_nlm(noisy, clean).array, clean, mask),
            "radsynth denoise": _metrics(denoised.array, clean, mask),
            "radsynth denoise, as written (watermarked)": _metrics(
                _as_written(denoised, "denoise"), clean, mask
            ),
        }
    return out


def super_resolution(volumes: dict[str, Image]) -> dict:
    out = {}
    for factor in (2, 4):
        model = load_translator(f"sr{factor}")
        for name, fine in volumes.items():
            crop = tuple(s - s % (factor * 8) for s in fine.array.shape[1:])
            fine = Image(
                fine.array[:, : crop[0], : crop[1]],
                spacing=fine.spacing,
                modality=fine.modality,
                units=fine.units,
            )
            mask = body_mask(fine)
            coarse = _coarse(fine, factor)
            sr = translate_volume(coarse, f"sr{factor}", model)
            out[f"{name} x{factor}"] = {
                "bicubic": _metrics(_bicubic(coarse, fine.array.shape), fine, mask),
                "radsynth sr": _metrics(sr.array, fine, mask),
                "radsynth sr, as written (watermarked)": _metrics(_as_written(sr, f"sr{factor}"), fine, mask),
            }
    return out


def _bands(hu: np.ndarray) -> dict[str, float]:
    return {k: float(np.mean((hu >= lo) & (hu < hi))) for k, (lo, hi) in HU_BANDS.items()}


def mr_to_ct(mr: Image) -> dict:
    translated = translate_volume(mr, "mr2ct", load_translator("mr2ct"))
    mask = body_mask(mr)
    head = sources._load_cranium().image
    head_ct = head.array[20:100:8].astype(np.float32)
    level, width = WINDOWS["bone"]
    real = [apply_window(s, level, width) for s in head_ct]
    fake = [apply_window(s, level, width) for s in translated.array]
    structure = structure_metrics(translated.array, mr.array, mask)
    return {
        "frd_to_real_head_ct": domain_fidelity(fake, real),
        "frd_mr_input_to_real_head_ct": domain_fidelity([s / s.max() for s in mr.array], real),
        "structure": structure,
        "structure_of_an_unrelated_ct": structure_metrics(
            _fit(head_ct[: len(mr.array)], mr.array.shape), mr.array, mask
        ),
        "hu_bands_translated": _bands(translated.array[mask]),
        "hu_bands_real_head_ct": _bands(head_ct[head_ct > -500]) | {"air (< -500)": 0.0},
    }


def _fit(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    import torch

    return torch.nn.functional.interpolate(torch.from_numpy(array)[:, None], size=shape[1:], mode="bilinear")[
        :, 0
    ].numpy()


def t1_to_pd() -> dict:
    """The shipped t1pd model on its training pair, against T1 itself as the "prediction"."""
    t1, pd = (
        sources._brainweb_slice(sources.ITK_DATA / f"Brain{n}Slice.png") for n in ("T1", "ProtonDensity")
    )
    volume = Image(np.stack([t1.array, t1.array]).astype(np.float32), spacing=(1.0, 1.0, 1.0), modality="MR")
    reference = Image(
        np.stack([pd.array, pd.array]).astype(np.float32), spacing=(1.0, 1.0, 1.0), modality="MR"
    )
    predicted = translate_volume(volume, "t1pd", load_translator("t1pd")).array
    mask = body_mask(reference, "MR")

    def unit(a: np.ndarray) -> np.ndarray:  # each in its own 0.5-99.5th percentile range
        lo, hi = np.percentile(a[mask], [0.5, 99.5])
        return (a - lo) / (hi - lo)

    return {
        name: paired_metrics(unit(a), unit(reference.array), mask, data_range=1.0)
        for name, a in (("T1 as is", volume.array), ("radsynth t1pd", predicted))
    }


def timing(mr: Image) -> dict:
    """Seconds per 256x256 slice (4 slices) and per whole MNI152 volume, per task."""
    whole = _mni152()
    volume = Image(_fit(mr.array[:4], (4, 256, 256)), spacing=(0.8, 0.8, 2.0), modality="MR")
    out: dict[str, dict[str, float]] = {"per_256_slice": {}, "per_volume": {}}
    for task in ("denoise", "sr2", "mr2ct", "t1pd"):
        model = load_translator(task)
        for key, source in (("per_256_slice", volume), ("per_volume", whole)):
            if task == "sr2":  # the same output grid from half the input pixels
                spacing = (source.spacing[0] * 2, source.spacing[1] * 2, source.spacing[2])
                source = Image(source.array[:, ::2, ::2], spacing=spacing, modality="MR")
            started = time.perf_counter()
            translate_volume(source, task, model)
            seconds = time.perf_counter() - started
            out[key][task] = seconds / 4 if key == "per_256_slice" else seconds
    out["volume_shape"] = list(whole.array.shape)
    return out


def _colin27() -> Image:
    """Colin27 T1 (a training subject of the demo, but a head with its skull, which the
    held-out brains lack), the same slab as the MNI152 one."""
    mr = read_image(sources.MRICRON / "ch2.nii.gz")
    mid = mr.array.shape[0] // 2
    return Image(
        mr.array[mid - 20 : mid + 20 : 40 // SLICES].astype(np.float32), spacing=mr.spacing, modality="MR"
    )


def write_cards(figures: dict) -> None:
    """Each shipped translator's card gets the figures of its task (``metrics.benchmark``)."""
    from radsynth.models.registry import shipped
    from radsynth.translate.volume import TASKS

    per_model = {
        "translate-denoise": {"denoising": figures["denoising"]},
        "translate-sr": {"super_resolution": figures["super_resolution"]},
        "translate-mr2ct": {"mr_to_ct": figures["mr_to_ct"]},
        "translate-t1pd": {"t1_to_pd_training_pair": figures["t1_to_pd_training_pair"]},
    }
    for model in per_model:  # the demo's translators (the real-pair ones: translation_cv.py)
        path = shipped(model) / "card.json"
        card = json.loads(path.read_text())
        card.setdefault("metrics", {})["benchmark"] = {
            "command": "python benchmarks/translation.py --cards",
            "seconds_per_256_slice": {
                task: v
                for task, v in figures["seconds"]["per_256_slice"].items()
                if TASKS[task].model == model
            },
            **per_model[model],
        }
        path.write_text(json.dumps(card, indent=2, default=float) + "\n")


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", action="store_true", help="also record the figures in the shipped cards")
    args = parser.parse_args()
    from radsynth import DEFAULT_FAMILY
    from radsynth.models.registry import shipped
    from radsynth.translate.volume import TASKS

    volumes = _volumes()
    mni152 = _mni152_slab()
    figures = {
        "settings": run_record(
            sorted({shipped(spec.model, spec.family or DEFAULT_FAMILY) for spec in TASKS.values()})
        ),
        "denoising": denoising(volumes),
        "super_resolution": super_resolution(volumes),
        "mr_to_ct": {
            "MNI152 T1 (held out, skull-stripped)": mr_to_ct(mni152),
            "Colin27 T1 (training subject, with skull)": mr_to_ct(_colin27()),
        },
        "t1_to_pd_training_pair": t1_to_pd(),
        "seconds": timing(mni152),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2, default=float) + "\n")
    if args.cards:
        write_cards(figures)
    console = Console()
    for title in ("denoising", "super_resolution"):
        table = Table(title=f"{title}: PSNR dB / SSIM / MAE inside the body")
        table.add_column("volume")
        table.add_column("method")
        table.add_column("PSNR / SSIM / MAE")
        for volume, methods in figures[title].items():
            for method, m in methods.items():
                table.add_row(volume, method, f"{m['psnr']:.2f} / {m['ssim']:.3f} / {m['mae']:.3g}")
        console.print(table)
    console.print_json(json.dumps(figures["mr_to_ct"], default=float))
    console.print_json(json.dumps(figures["t1_to_pd_training_pair"], default=float))
    console.print_json(json.dumps(figures["seconds"], default=float))


if __name__ == "__main__":
    main()
