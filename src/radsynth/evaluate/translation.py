"""Metrics for modality translation (MR -> CT, T1 -> T2, denoising, super-resolution).

Paired data (a registered reference exists): MAE, PSNR and SSIM inside a body mask, as
the SynthRAD challenge reports them; outside the body a translator only has to draw air,
which would inflate every score. MAE is in the images' units (HU for CT). CT is clipped to
``TRANSLATION_HU_RANGE`` (-1024..2000 HU) first, and that range is PSNR's and SSIM's data
range, so a figure means the same for every case; other images use the data range given
or else the widest range (max - min) among the references.

Unpaired data (no reference): does the output look like the target domain (the Fréchet
Radiomics Distance to real target slices), and does it keep the source's anatomy
(normalised mutual information and the correlation of gradient magnitudes between source
and output, both insensitive to the intensity mapping a translation is meant to change)?

Per case and overall: slices of one case pool their voxels into the case's figure, and the
overall figure is the mean over cases with a percentile-bootstrap interval over cases
(a case, not a slice, is the independent unit).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from radsynth.data.normalise import foreground_mask
from radsynth.data.paired import TRANSLATION_HU_RANGE, geometry_difference
from radsynth.errors import GeometryMismatch, InvalidInput
from radsynth.evaluate.stats import DEFAULT_BOOTSTRAP, bootstrap_ci
from radsynth.io.image import Image

SSIM_WINDOW = 11  # pixels, Gaussian sigma 1.5: Wang et al. 2004, MONAI's defaults
NMI_BINS = 64

ArrayOrImage = np.ndarray | Image


@dataclass
class TranslationPair:
    """One translated image and what it is judged against.

    ``prediction`` and ``reference`` (a 2D slice or a 3D volume, arrays or Images on one
    grid) are in the same units: HU for CT, or [0, 1] for normalised slices. ``mask`` is
    the body mask (bool, same shape; computed from the reference when None). ``source``
    (the translator's input, same grid) enables the structure metrics. Pairs sharing
    ``case`` are pooled into one case.
    """

    case: str
    prediction: ArrayOrImage
    reference: ArrayOrImage
    mask: np.ndarray | None = None
    source: ArrayOrImage | None = None


# --- inputs ------------------------------------------------------------------------------


def _pixels(x: ArrayOrImage, what: str) -> np.ndarray:
    array = np.asarray(x.array if isinstance(x, Image) else x, np.float64)
    if (isinstance(x, Image) and x.rgb) or array.ndim not in (2, 3):
        raise InvalidInput(f"{what}: need a grey 2D slice or 3D volume, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise InvalidInput(f"{what}: contains NaN or infinite values")
    return array


def check_same_grid(a: ArrayOrImage, b: ArrayOrImage, what: str = "prediction vs reference") -> None:
    """``GeometryMismatch`` naming the difference when ``a`` and ``b`` are not on one grid.

    Arrays must share a shape; Images also spacing, origin and direction (1e-3 mm).
    """
    shape_a, shape_b = np.shape(getattr(a, "array", a)), np.shape(getattr(b, "array", b))
    why = f"shape {shape_a} vs {shape_b}" if shape_a != shape_b else None
    if why is None and isinstance(a, Image) and isinstance(b, Image):
        why = geometry_difference(a, b)
    if why:
        raise GeometryMismatch(f"{what}: {why}")


def _is_ct(x: ArrayOrImage, modality: str | None) -> bool:
    if modality is not None:
        return modality.upper() == "CT"
    return isinstance(x, Image) and (x.modality == "CT" or x.units == "HU")


def body_mask(image: ArrayOrImage, modality: str | None = None) -> np.ndarray:
    """The body (bool): threshold, largest connected component, holes filled.

    The threshold is -500 HU for CT and 10 % of the intensity range otherwise (see
    ``radsynth.data.normalise.foreground_mask``); the largest component drops the table
    and noise specks; filling holes (per slice for a volume, since the airways and sinuses
    open to the outside in 3D) puts air inside the body back in. ``InvalidInput`` when
    nothing is left.
    """
    array = _pixels(image, "image")
    rough = foreground_mask(array, "CT" if _is_ct(image, modality) else "MR")
    labels, n = ndimage.label(rough)
    if n == 0:
        raise InvalidInput("empty body mask: nothing above the body threshold")
    largest = labels == 1 + int(np.argmax(ndimage.sum_labels(rough, labels, range(1, n + 1))))
    if largest.ndim == 2:
        return ndimage.binary_fill_holes(largest)
    return np.stack([ndimage.binary_fill_holes(s) for s in largest])


def _mask_for(pair: TranslationPair, reference: np.ndarray, modality: str | None) -> np.ndarray:
    if pair.mask is None:
        return body_mask(pair.reference, modality)
    mask = np.asarray(pair.mask, bool)
    if mask.shape != reference.shape:
        raise GeometryMismatch(f"case {pair.case}: mask shape {mask.shape} vs image {reference.shape}")
    if not mask.any():
        raise InvalidInput(f"case {pair.case}: empty body mask")
    return mask


# --- paired metrics ----------------------------------------------------------------------


def _ssim_map(prediction: np.ndarray, reference: np.ndarray, data_range: float) -> np.ndarray:
    """MONAI's SSIM map (Wang et al. 2004) of each 2D slice: (Z, H - 10, W - 10) for a
    window of 11. 3D volumes are scored slice by slice, as a 2D translator makes them."""
    import torch
    from monai.metrics.regression import compute_ssim_and_cs

    def batch(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x.reshape(-1, 1, *x.shape[-2:]))  # (Z, 1, H, W)

    if min(prediction.shape[-2:]) < SSIM_WINDOW:
        raise InvalidInput(f"SSIM needs slices of at least {SSIM_WINDOW} pixels, got {prediction.shape}")
    ssim, _ = compute_ssim_and_cs(
        batch(prediction),
        batch(reference),
        spatial_dims=2,
        kernel_size=[SSIM_WINDOW] * 2,
        kernel_sigma=[1.5, 1.5],
        data_range=data_range,
    )
    return ssim[:, 0].numpy()


def _psnr(mse: float, data_range: float) -> float:
    """PSNR in dB of voxels with mean squared error ``mse`` (MONAI ``PSNRMetric``'s formula,
    20 log10(range) - 10 log10(MSE)); infinite for identical images."""
    if mse == 0:
        return math.inf
    return 20 * math.log10(data_range) - 10 * math.log10(mse)


@dataclass
class _Sums:
    """Voxel sums of one case, so slices of different sizes pool exactly."""

    abs_error: float = 0.0
    sq_error: float = 0.0
    ssim: float = 0.0
    voxels: int = 0
    ssim_voxels: int = 0

    def add(self, prediction: np.ndarray, reference: np.ndarray, mask: np.ndarray, data_range: float) -> None:
        error = (prediction - reference)[mask]
        self.abs_error += float(np.abs(error).sum())
        self.sq_error += float((error**2).sum())
        self.voxels += int(mask.sum())
        ssim = _ssim_map(prediction, reference, data_range)
        half = SSIM_WINDOW // 2
        inner = mask.reshape(-1, *mask.shape[-2:])[:, half:-half, half:-half]  # where the window fits
        self.ssim += float(ssim[inner].sum())
        self.ssim_voxels += int(inner.sum())

    def metrics(self, data_range: float) -> dict[str, float]:
        mse = self.sq_error / self.voxels
        ssim = self.ssim / self.ssim_voxels if self.ssim_voxels else math.nan
        return {"mae": self.abs_error / self.voxels, "psnr": _psnr(mse, data_range), "ssim": ssim}


def paired_metrics(
    prediction: ArrayOrImage,
    reference: ArrayOrImage,
    mask: np.ndarray | None = None,
    data_range: float | None = None,
    modality: str | None = None,
) -> dict[str, float]:
    """MAE, PSNR (dB) and SSIM of ``prediction`` against ``reference`` inside ``mask``.

    MAE is in the images' units (HU for CT). ``modality`` ("CT") or CT Images clip to the
    translation HU range, which is then the data range; otherwise ``data_range`` or the
    reference's range (max - min). The mask defaults to :func:`body_mask`.
    """
    result = evaluate_translation_pairs(
        [TranslationPair("image", prediction, reference, mask)],
        data_range=data_range,
        modality=modality,
        n_boot=0,
    )
    return result["cases"]["image"]


# --- structure kept from the source ------------------------------------------------------


def normalised_mutual_information(a: np.ndarray, b: np.ndarray, bins: int = NMI_BINS) -> float:
    """Studholme's NMI, (H(A) + H(B)) / H(A, B): 1 for independent images, 2 for images
    that determine each other, whatever the intensity mapping between them."""
    joint, _, _ = np.histogram2d(np.ravel(a), np.ravel(b), bins=bins)
    p = joint / joint.sum()

    def entropy(q: np.ndarray) -> float:
        q = q[q > 0]
        return float(-(q * np.log(q)).sum())

    h_joint = entropy(p)
    return (entropy(p.sum(1)) + entropy(p.sum(0))) / h_joint if h_joint > 0 else 1.0


def _gradient_magnitude(x: np.ndarray) -> np.ndarray:
    """In-plane gradient magnitude (Gaussian derivative, sigma 1 pixel) of each slice."""
    sigma = (0, 1.0, 1.0) if x.ndim == 3 else 1.0
    return ndimage.gaussian_gradient_magnitude(x, sigma)


def edge_correlation(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Pearson correlation of gradient magnitudes inside ``mask``: edges in the same places.

    Scale free, so a contrast change that keeps the edges scores near 1 (an inverted
    copy scores exactly 1); 0 when either image is flat.
    """
    ga, gb = _gradient_magnitude(a)[mask], _gradient_magnitude(b)[mask]
    if ga.std() == 0 or gb.std() == 0:
        return 0.0
    return float(np.corrcoef(ga, gb)[0, 1])


def structure_metrics(
    translated: ArrayOrImage, source: ArrayOrImage, mask: np.ndarray | None = None
) -> dict[str, float]:
    """How much of the source's anatomy the translation kept, inside the body mask:
    ``nmi`` (1..2) and ``edge_correlation`` (-1..1). The mask defaults to the source's body."""
    check_same_grid(translated, source, "translated vs source")
    t, s = _pixels(translated, "translated"), _pixels(source, "source")
    mask = body_mask(source) if mask is None else np.asarray(mask, bool)
    if not mask.any():
        raise InvalidInput("empty body mask")
    return {
        "nmi": normalised_mutual_information(t[mask], s[mask]),
        "edge_correlation": edge_correlation(t, s, mask),
    }


def domain_fidelity(translated: Sequence[np.ndarray], target: Sequence[np.ndarray]) -> float:
    """Fréchet Radiomics Distance of translated [0, 1] slices to real target-domain slices
    (0 = same feature distribution); at least two slices each."""
    from radsynth.evaluate.features import radiomics_features
    from radsynth.evaluate.frechet import frechet_radiomics_distance

    if min(len(translated), len(target)) < 2:
        raise InvalidInput(f"FRD needs at least 2 slices per set, got {len(translated)} and {len(target)}")
    real, _ = radiomics_features(target)
    fake, _ = radiomics_features(translated)
    return frechet_radiomics_distance(real, fake)


# --- per case and overall ----------------------------------------------------------------


def _data_range(pairs: Sequence[TranslationPair], ct: bool, given: float | None) -> float:
    if ct:
        return TRANSLATION_HU_RANGE[1] - TRANSLATION_HU_RANGE[0]
    if given is not None:
        if given <= 0:
            raise InvalidInput(f"data_range must be positive, got {given}")
        return float(given)
    refs = [_pixels(p.reference, f"case {p.case} reference") for p in pairs]
    spread = max(float(r.max() - r.min()) for r in refs)
    return spread if spread > 0 else 1.0


def _overall(values: list[float], n_boot: int, seed: int) -> dict[str, float]:
    """Mean over cases with its bootstrap interval; infinite (identical cases) stays infinite."""
    array = np.asarray(values, np.float64)
    if not np.isfinite(array).all() or n_boot == 0 or len(array) < 2:
        mean = float(array.mean())
        return {"value": mean, "low": mean, "high": mean}
    return bootstrap_ci(lambda v: float(v.mean()), [array], n_boot=n_boot, seed=seed)


def _case_results(
    sums: dict[str, _Sums], structure: dict[str, list[tuple[dict[str, float], int]]], span: float
) -> dict[str, dict[str, float]]:
    """Per case: pooled paired metrics, and structure metrics weighted by mask voxels."""
    cases: dict[str, dict[str, float]] = {}
    for case, s in sums.items():
        cases[case] = {**s.metrics(span), "voxels": s.voxels}
        if case in structure:
            weights = [n for _, n in structure[case]]
            for name in ("nmi", "edge_correlation"):
                cases[case][name] = float(np.average([m[name] for m, _ in structure[case]], weights=weights))
    return cases


def evaluate_translation_pairs(
    pairs: Iterable[TranslationPair | tuple],
    data_range: float | None = None,
    modality: str | None = None,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
) -> dict:
    """Paired (and, where a source is given, structure) metrics per case and overall.

    ``pairs``: :class:`TranslationPair` items, or tuples ``(case, prediction, reference[,
    mask[, source]])``: 2D slices or 3D volumes (arrays or ``Image``), prediction and
    reference on one grid and in one unit (HU for CT: pass ``modality="CT"`` for arrays;
    use ``radsynth.data.paired.hu_from_unit`` on stored [0, 1] CT slices). Slices sharing a
    case are pooled voxel by voxel. Returns::

        {"cases": {case: {"mae", "psnr", "ssim"[, "nmi", "edge_correlation"], "voxels"}},
         "overall": {metric: {"value", "low", "high"}}, "n_cases": int,
         "data_range": float, "units": "HU" | ""}

    ``overall`` is the mean over cases with a 95 % bootstrap interval over cases
    (``n_boot`` draws, 0 for none). ``GeometryMismatch`` for grids that differ,
    ``InvalidInput`` for NaNs or an empty mask, naming the case.
    """
    items = [p if isinstance(p, TranslationPair) else TranslationPair(*p) for p in pairs]
    if not items:
        raise InvalidInput("no translation pairs to evaluate")
    ct = any(_is_ct(p.reference, modality) for p in items)
    span = _data_range(items, ct, data_range)
    sums: dict[str, _Sums] = {}
    structure: dict[str, list[tuple[dict[str, float], int]]] = {}
    for p in items:
        check_same_grid(p.prediction, p.reference, f"case {p.case}: prediction vs reference")
        pred, ref = (
            _pixels(p.prediction, f"case {p.case} prediction"),
            _pixels(p.reference, f"case {p.case} reference"),
        )
        mask = _mask_for(p, ref, "CT" if ct else modality)
        if ct:
            pred, ref = np.clip(pred, *TRANSLATION_HU_RANGE), np.clip(ref, *TRANSLATION_HU_RANGE)
        sums.setdefault(p.case, _Sums()).add(pred, ref, mask, span)
        if p.source is not None:
            kept = structure_metrics(p.prediction, p.source, mask)
            structure.setdefault(p.case, []).append((kept, int(mask.sum())))
    cases = _case_results(sums, structure, span)
    names = [k for k in next(iter(cases.values())) if k != "voxels"]
    overall = {
        name: _overall([c[name] for c in cases.values() if name in c], n_boot, seed)
        for name in names
        if all(name in c for c in cases.values())
    }
    return {
        "cases": cases,
        "overall": overall,
        "n_cases": len(cases),
        "data_range": span,
        "units": "HU" if ct else "",
    }
