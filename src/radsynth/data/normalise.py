"""Intensity normalisation per modality, to [0, 1], so one model sees comparable numbers.

- CT is in Hounsfield units, which mean the same on every scanner, so a fixed named window
  (level, width in HU) is the right map: it is what a radiologist looks at.
- MR intensities are arbitrary per scan, so they are scaled by robust percentiles of the
  foreground (0.5 and 99.5 by default): the air around the head would otherwise pull the
  low percentile to zero and waste the range.
- Skull-stripped multi-contrast MR (the BraTS layout) is scaled by its commonest brain
  intensity instead (:func:`tissue_mode_scale`): the 99.5th percentile of a FLAIR or T2
  is the tumour's or the ventricles' brightness, which differs from subject to subject, so
  percentile scaling put the brain's median of one contrast up to 2x apart between the
  three glioma subjects (T2 2.02x, FLAIR 1.75x), and a translator cannot learn which.
- Projection X-ray (CR/DX) and other display images are scaled by percentiles of the
  whole image; MONOCHROME1 inversion is the reader's job (``radsynth.io``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from radsynth.errors import InvalidInput
from radsynth.io.image import Image

# (level, width) in HU. Subdural: Radiopaedia gives W 130-300, L 50-100; we take the middle.
WINDOWS: dict[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "subdural": (75.0, 215.0),
    "lung": (-600.0, 1500.0),
    "soft_tissue": (50.0, 400.0),
    "bone": (400.0, 1800.0),
}
_ALIASES = {"mediastinum": "soft_tissue", "mediastinal": "soft_tissue", "soft": "soft_tissue"}

# How a window reads in a description ("lung window").
WINDOW_WORDS = {
    "brain": "brain window",
    "subdural": "subdural window",
    "lung": "lung window",
    "soft_tissue": "soft-tissue window",
    "bone": "bone window",
}

XRAY_MODALITIES = ("CR", "DX", "MG", "XA")
TISSUE_MODE_AT = 0.25  # where tissue_mode_scale puts the brain's commonest intensity


def window_name(name: str) -> str:
    """Canonical window name (``"soft tissue"``, ``"Mediastinum"`` -> ``"soft_tissue"``)."""
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in WINDOWS:
        raise InvalidInput(f"unknown CT window {name!r}; choose one of {', '.join(WINDOWS)}")
    return key


def apply_window(hu: np.ndarray, level: float, width: float) -> np.ndarray:
    """Map HU to [0, 1]: ``level - width/2`` -> 0, ``level + width/2`` -> 1, clipped (float32)."""
    if width <= 0:
        raise InvalidInput(f"window width must be positive, got {width}")
    low = level - width / 2.0
    out = (np.asarray(hu, np.float32) - np.float32(low)) / np.float32(width)
    return np.clip(out, 0.0, 1.0, out=out)


def foreground_mask(array: np.ndarray, modality: str = "MR") -> np.ndarray:
    """Voxels that belong to the patient rather than the air around them (bool).

    CT: above -500 HU (soft tissue and bone; air and lung are below). Other modalities:
    above 10 % of the 99th percentile, a threshold that sits between the dark background
    and tissue on MR without needing the noise level.
    """
    a = np.asarray(array)
    if modality.upper() == "CT":
        return a > -500
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return np.zeros(a.shape, bool)
    low = float(finite.min())
    high = float(np.percentile(finite, 99))
    return a > low + 0.1 * (high - low)


def percentile_scale(
    array: np.ndarray, low: float = 0.5, high: float = 99.5, mask: np.ndarray | None = None
) -> np.ndarray:
    """Map the ``low`` and ``high`` percentiles (of ``mask`` voxels, else all) to 0 and 1.

    Robust to an empty background: when the mask holds under 1 % of the voxels (nothing
    but background, or a wrong mask) all voxels are used instead; a constant image maps
    to zeros rather than dividing by zero.
    """
    a = np.asarray(array, np.float32)
    values = a[mask] if mask is not None and mask.sum() >= 0.01 * a.size else a
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.zeros(a.shape, np.float32)
    lo, hi = np.percentile(values, [low, high])
    if hi <= lo:
        return np.zeros(a.shape, np.float32)
    out = (a - np.float32(lo)) / np.float32(hi - lo)
    return np.clip(out, 0.0, 1.0, out=out)


def tissue_mode(values: np.ndarray, bins: int = 256) -> float:
    """The commonest intensity of ``values`` (a brain's voxels): the peak of their
    histogram between the 1st and 99th percentiles, smoothed over 5 bins. It is the bulk
    tissue (white matter, the largest class) on every contrast, where a top percentile
    moves with the size of a bright tumour or of the ventricles."""
    values = np.asarray(values, np.float32)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise InvalidInput("no voxels to find the commonest tissue intensity in")
    lo, hi = (float(v) for v in np.percentile(values, [1, 99]))
    if hi <= lo:
        return hi
    counts, edges = np.histogram(values, bins, (lo, hi))
    k = int(np.argmax(np.convolve(counts, np.ones(5) / 5, mode="same")))
    return float(edges[k] + edges[k + 1]) / 2


def tissue_mode_scale(values: np.ndarray) -> tuple[float, float]:
    """(low, high) of a linear map to [0, 1] that puts 0 at 0 (the empty background of a
    skull-stripped volume) and :func:`tissue_mode` at ``TISSUE_MODE_AT``: tissue up to
    4x the commonest intensity (T2 cerebrospinal fluid) keeps its contrast."""
    mode = tissue_mode(values)
    return 0.0, (mode / TISSUE_MODE_AT if mode > 0 else 1.0)


def grey(image: Image) -> np.ndarray:
    """Luminance (ITU-R BT.601) of an RGB image; grey images pass through."""
    if not image.rgb:
        return image.array
    return image.array[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def normalise(
    image: Image,
    modality: str | None = None,
    window: str | None = None,
    percentiles: tuple[float, float] = (0.5, 99.5),
    mask: np.ndarray | None = None,
) -> Image:
    """The image mapped to [0, 1] (float32, grey) by the rule for its modality.

    ``modality`` defaults to ``image.modality``. CT needs HU (``units == "HU"``) and uses
    ``window`` (default ``"soft_tissue"``); MR uses foreground percentiles (``mask`` to
    give the foreground, else :func:`foreground_mask`); everything else uses
    percentiles over the whole image. How it was done is recorded in
    ``metadata["normalisation"]`` so a value can be mapped back.
    """
    modality = (modality or image.modality or "OT").upper()
    grey_pixels = grey(image)
    if modality == "CT":
        if image.units and image.units != "HU":
            raise InvalidInput(f"CT windowing needs HU, but the image is in {image.units!r}")
        name = window_name(window or "soft_tissue")
        level, width = WINDOWS[name]
        out = apply_window(grey_pixels, level, width)
        how = {"rule": "ct_window", "window": name, "level_hu": level, "width_hu": width}
    elif modality == "MR":
        fg = foreground_mask(grey_pixels, "MR") if mask is None else np.asarray(mask, bool)
        out = percentile_scale(grey_pixels, *percentiles, mask=fg)
        how = {"rule": "mr_foreground_percentiles", "percentiles": list(percentiles)}
    else:
        out = percentile_scale(grey_pixels, *percentiles)
        how = {"rule": "percentiles", "percentiles": list(percentiles)}
    metadata = {**image.metadata, "normalisation": how}
    return replace(image, array=out, rgb=False, modality=modality, units="", metadata=metadata)
