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

Task-specific checks, where a mean error hides what matters: the Dice of the bone region
(MR -> CT: a translator that blurs the skull away scores a fair MAE) and the contrast of the
hyperintense lesion (MR -> FLAIR/T2 of gliomas: a translator that draws a healthy brain
scores a fair SSIM).

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
# Bone in the Harvard atlas CT PNGs (8-bit windowed, 0..255, not HU). Measured on all 184
# slices: the skull is saturated (>= 250; 30 % of head pixels), the brain 4 pixels or more
# inside the saturated ring has median 107 and 99.9th percentile 226 (the brightest series,
# prefix 20, median 158, 99th percentile 226). At 230, 0.07 % of those brain pixels (0.6 %
# in series 20) count as bone, and the saturated skull is 97.5 % of what does.
ATLAS_BONE_THRESHOLD = 230.0
LESION_Z = 2.0  # standard deviations above the brain's mean: the hyperintense lesion rule
LESION_MARGIN = 3  # voxels of dilation around the lesion kept out of normal tissue
WHITE_MATTER_PERCENTILE = 70.0  # of T1 inside the brain: white matter is the bright part

ArrayOrImage = np.ndarray | Image


@dataclass
class TranslationPair:
    """One translated image and what it is judged against.

    ``prediction`` and ``reference`` (a 2D slice or a 3D volume, arrays or Images on one
    grid) are in the same units: HU for CT, or [0, 1] for normalised slices. ``mask`` is
    the body mask (bool, same shape; computed from the reference when None). ``source``
    (the translator's input, same grid) enables the structure metrics; ``tissue`` is the
    normal tissue the lesion contrast is measured against (see :func:`lesion_metrics`).
    Pairs sharing ``case`` are pooled into one case.
    """

    case: str
    prediction: ArrayOrImage
    reference: ArrayOrImage
    mask: np.ndarray | None = None
    source: ArrayOrImage | None = None
    tissue: np.ndarray | None = None  # normal tissue for the lesion contrast (bool, same grid)


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


# --- bone and lesion ---------------------------------------------------------------------


def _dice(overlap: float, a: float, b: float) -> float:
    """2|A n B| / (|A| + |B|) from voxel counts; 1.0 when both regions are empty."""
    return 1.0 if a + b == 0 else float(2.0 * overlap / (a + b))


def _region_mask(mask: np.ndarray, like: np.ndarray, what: str) -> np.ndarray:
    region = np.asarray(mask, bool)
    if region.shape != like.shape:
        raise GeometryMismatch(f"{what} shape {region.shape} vs image {like.shape}")
    return region


def _bone_counts(
    prediction: np.ndarray, reference: np.ndarray, mask: np.ndarray, threshold: float
) -> np.ndarray:
    """(overlap, predicted bone, reference bone) voxel counts inside ``mask``."""
    pred, ref = (prediction >= threshold) & mask, (reference >= threshold) & mask
    return np.array([(pred & ref).sum(), pred.sum(), ref.sum()], np.float64)


def bone_dice(
    prediction: ArrayOrImage,
    reference: ArrayOrImage,
    mask: np.ndarray | None = None,
    threshold: float = ATLAS_BONE_THRESHOLD,
) -> float:
    """Dice of the bone regions (voxels >= ``threshold``) of a synthetic and a real CT
    inside ``mask`` (default: the reference's :func:`body_mask`); 2D or 3D, one grid.

    ``threshold`` is in the images' units: ``ATLAS_BONE_THRESHOLD`` (230) suits the 8-bit
    Harvard atlas CT; for HU, cortical bone starts near 300 HU. 1.0 when neither image has
    bone inside the mask.
    """
    check_same_grid(prediction, reference)
    pred, ref = _pixels(prediction, "prediction"), _pixels(reference, "reference")
    region = body_mask(reference) if mask is None else _region_mask(mask, ref, "mask")
    return _dice(*_bone_counts(pred, ref, region, threshold))


def _dilated(region: np.ndarray, voxels: int) -> np.ndarray:
    return ndimage.binary_dilation(region, iterations=voxels) if region.any() else region


def _hyperintense(images: Sequence[np.ndarray], brains: Sequence[np.ndarray], z: float) -> list[np.ndarray]:
    """Brain voxels above mean + z sd of the brain voxels of all ``images`` together."""
    values = np.concatenate([x[b] for x, b in zip(images, brains, strict=True)])
    cut = values.mean() + z * values.std()
    return [b & (x > cut) for x, b in zip(images, brains, strict=True)]


def _lesion_case(slices: Sequence[tuple[np.ndarray, ...]], z: float, case: str) -> dict[str, float]:
    """The lesion figures of one case from its (prediction, reference, brain, tissue|None)
    slices, the rule's mean and sd pooled over all of them."""
    preds, refs, brains, tissues = zip(*slices, strict=True)
    if not sum(int(b.sum()) for b in brains):
        raise InvalidInput(f"case {case}: empty brain mask")
    ref_lesion, pred_lesion = _hyperintense(refs, brains, z), _hyperintense(preds, brains, z)
    overlap = sum(int((a & b).sum()) for a, b in zip(pred_lesion, ref_lesion, strict=True))
    n_pred, n_ref = (sum(int(r.sum()) for r in regions) for regions in (pred_lesion, ref_lesion))
    result = {"lesion_dice": _dice(overlap, n_pred, n_ref), "lesion_voxels": n_ref}
    normal = [
        t if t is not None else b & ~_dilated(lesion, LESION_MARGIN)
        for t, b, lesion in zip(tissues, brains, ref_lesion, strict=True)
    ]
    n_normal = sum(int(t.sum()) for t in normal)
    if n_ref and not n_normal:
        raise InvalidInput(f"case {case}: no normal tissue left to compare the lesion with")

    def contrast(images: Sequence[np.ndarray], what: str) -> float:
        if not n_ref:
            return math.nan
        inside = sum(float(x[r].sum()) for x, r in zip(images, ref_lesion, strict=True)) / n_ref
        around = sum(float(x[t].sum()) for x, t in zip(images, normal, strict=True)) / n_normal
        if around <= 0:
            raise InvalidInput(f"case {case}: {what} is not positive in normal tissue ({around:.3g})")
        return (inside - around) / around

    reference, predicted = contrast(refs, "reference"), contrast(preds, "prediction")
    result["lesion_contrast_reference"], result["lesion_contrast_prediction"] = reference, predicted
    result["contrast_ratio"] = predicted / reference if n_ref and reference != 0 else math.nan
    return result


def lesion_metrics(
    prediction: ArrayOrImage,
    reference: ArrayOrImage,
    brain: np.ndarray,
    tissue: np.ndarray | None = None,
    z: float = LESION_Z,
) -> dict[str, float]:
    """How well a translation to FLAIR or T2 keeps a hyperintense lesion (gliomas).

    The lesion region of an image is its brain voxels above mean + ``z`` sd of its own
    brain voxels: a threshold, not a segmentation (on T2, CSF passes it too; FLAIR
    suppresses CSF). On the FLAIR of the three shared glioma subjects (brain = non-zero
    voxels, z = 2) it holds 60,509 voxels in BraTS-GLI-00001-000 (the tumour and its
    oedema), 17,370 in TCGA-DU-7294 and 16,359 in TCGA-FG-6692.

    Returns ``lesion_contrast_reference`` and ``lesion_contrast_prediction``, each image's
    (mean in the reference's lesion - mean in normal tissue) / mean in normal tissue, on
    the same regions; ``contrast_ratio`` (prediction / reference: 1 keeps the lesion, 0
    erases it); ``lesion_dice`` (each image thresholded by its own rule; 1.0 when both are
    empty) and ``lesion_voxels`` (of the reference). Normal tissue is ``tissue`` when given
    (e.g. :func:`white_matter`), else the brain less the reference's lesion dilated by
    ``LESION_MARGIN`` voxels. A reference without lesion voxels gives NaN contrasts and
    ratio. ``brain`` and ``tissue`` are bool masks on the images' grid (2D or 3D).
    """
    check_same_grid(prediction, reference)
    pred, ref = _pixels(prediction, "prediction"), _pixels(reference, "reference")
    region = _region_mask(brain, ref, "brain")
    normal = None if tissue is None else _region_mask(tissue, ref, "tissue")
    return _lesion_case([(pred, ref, region, normal)], z, "image")


def lesion_region(image: ArrayOrImage, brain: np.ndarray, z: float = LESION_Z) -> np.ndarray:
    """The hyperintense lesion region of ``image`` by :func:`lesion_metrics`' rule (brain
    voxels above mean + ``z`` sd of the brain), e.g. to keep it out of :func:`white_matter`."""
    array = _pixels(image, "image")
    return _hyperintense([array], [_region_mask(brain, array, "brain")], z)[0]


def white_matter(t1: ArrayOrImage, brain: np.ndarray, lesion: np.ndarray | None = None) -> np.ndarray:
    """Normal white matter, roughly: brain voxels whose T1 is above the brain's 70th T1
    percentile (white matter is the brightest tissue on T1), less ``lesion`` dilated by
    ``LESION_MARGIN`` voxels. A threshold for a reference region, not a segmentation."""
    array = _pixels(t1, "t1")
    region = _region_mask(brain, array, "brain")
    if not region.any():
        raise InvalidInput("empty brain mask")
    wm = region & (array > np.percentile(array[region], WHITE_MATTER_PERCENTILE))
    if lesion is not None:
        wm &= ~_dilated(_region_mask(lesion, array, "lesion"), LESION_MARGIN)
    return wm


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


# Lesion figures that are NaN for a case without a lesion: such a case has nothing to judge,
# so the overall mean is over the cases that have one.
_LESION_RATIOS = ("lesion_contrast_reference", "lesion_contrast_prediction", "contrast_ratio")


def _overall(values: list[float], n_boot: int, seed: int) -> dict[str, float]:
    """Mean over cases with its bootstrap interval; infinite (identical cases) stays infinite."""
    array = np.asarray(values, np.float64)
    if len(array) == 0:
        return {"value": math.nan, "low": math.nan, "high": math.nan}
    if not np.isfinite(array).all() or n_boot == 0 or len(array) < 2:
        mean = float(array.mean())
        return {"value": mean, "low": mean, "high": mean}
    return bootstrap_ci(lambda v: float(v.mean()), [array], n_boot=n_boot, seed=seed)


def _case_values(cases: dict[str, dict[str, float]], name: str) -> list[float]:
    values = [c[name] for c in cases.values()]
    return [v for v in values if not math.isnan(v)] if name in _LESION_RATIOS else values


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


def _tissue_for(pair: TranslationPair, reference: np.ndarray) -> np.ndarray | None:
    if pair.tissue is None:
        return None
    return _region_mask(pair.tissue, reference, f"case {pair.case}: tissue")


def evaluate_translation_pairs(
    pairs: Iterable[TranslationPair | tuple],
    data_range: float | None = None,
    modality: str | None = None,
    n_boot: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    bone_threshold: float | None = None,
    lesion: bool = False,
) -> dict:
    """Paired (and, where a source is given, structure) metrics per case and overall.

    ``pairs``: :class:`TranslationPair` items, or tuples ``(case, prediction, reference[,
    mask[, source[, tissue]]])``: 2D slices or 3D volumes (arrays or ``Image``), prediction
    and reference on one grid and in one unit (HU for CT: pass ``modality="CT"`` for arrays;
    use ``radsynth.data.paired.hu_from_unit`` on stored [0, 1] CT slices). Slices sharing a
    case are pooled voxel by voxel. ``bone_threshold`` (in the images' units after the CT
    clip) adds ``bone_dice`` (:func:`bone_dice`, counts pooled over the case's slices);
    ``lesion`` adds :func:`lesion_metrics`' keys with the mask as the brain, the rule's
    mean and sd pooled over the case's slices. Returns::

        {"cases": {case: {"mae", "psnr", "ssim"[, "nmi", "edge_correlation"][, "bone_dice"]
                          [, "lesion_contrast_reference", "lesion_contrast_prediction",
                          "contrast_ratio", "lesion_dice", "lesion_voxels"], "voxels"}},
         "overall": {metric: {"value", "low", "high"}}, "n_cases": int,
         "data_range": float, "units": "HU" | ""}

    ``overall`` is the mean over cases with a 95 % bootstrap interval over cases
    (``n_boot`` draws, 0 for none); voxel counts have none, and the lesion contrasts and
    ratio are averaged over the cases with a lesion. ``GeometryMismatch`` for grids that
    differ, ``InvalidInput`` for NaNs or an empty mask, naming the case.
    """
    items = [p if isinstance(p, TranslationPair) else TranslationPair(*p) for p in pairs]
    if not items:
        raise InvalidInput("no translation pairs to evaluate")
    ct = any(_is_ct(p.reference, modality) for p in items)
    span = _data_range(items, ct, data_range)
    sums: dict[str, _Sums] = {}
    structure: dict[str, list[tuple[dict[str, float], int]]] = {}
    bone: dict[str, np.ndarray] = {}
    lesions: dict[str, list[tuple[np.ndarray, ...]]] = {}
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
        if bone_threshold is not None:
            bone[p.case] = bone.get(p.case, 0) + _bone_counts(pred, ref, mask, bone_threshold)
        if lesion:
            lesions.setdefault(p.case, []).append((pred, ref, mask, _tissue_for(p, ref)))
    cases = _case_results(sums, structure, span)
    for case, counts in bone.items():
        cases[case]["bone_dice"] = _dice(*counts)
    for case, slices in lesions.items():
        cases[case] |= _lesion_case(slices, LESION_Z, case)
    names = [k for k in next(iter(cases.values())) if k not in ("voxels", "lesion_voxels")]
    overall = {
        name: _overall(_case_values(cases, name), n_boot, seed)
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
