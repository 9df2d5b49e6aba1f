"""Feature spaces for comparing image sets: radiomics (pyradiomics) and the domain
features of the attribute classifier trained here on real slices.

Both work on 2D slices in the display range [0, 1] the generators were trained in, so
real and synthetic images are measured in the same units.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from radsynth.data.normalise import foreground_mask
from radsynth.errors import InvalidInput
from radsynth.extras import optional_import
from radsynth.models.classifier import ClassifierConfig
from radsynth.models.intensity import to_model_range
from radsynth.models.registry import load_pretrained

# First-order and texture classes (no shape: a Fréchet distance over generated slices
# should not hinge on a threshold mask's outline), on the original image and on its
# wavelet and LoG filtered versions, as the Fréchet Radiomics Distance prescribes.
RADIOMICS_CLASSES = ("firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
RADIOMICS_FILTERS: dict[str, dict[str, Any]] = {"Original": {}, "Wavelet": {}, "LoG": {"sigma": [1.0, 2.0]}}


def _extractor():
    featureextractor = optional_import("radiomics.featureextractor", "eval")
    logging.getLogger("radiomics").setLevel(logging.ERROR)
    extractor = featureextractor.RadiomicsFeatureExtractor(binCount=32, force2D=True, label=1)
    extractor.disableAllFeatures()
    for name in RADIOMICS_CLASSES:
        extractor.enableFeatureClassByName(name)
    extractor.enableImageTypes(**RADIOMICS_FILTERS)
    return extractor


def radiomics_mask(unit: np.ndarray) -> np.ndarray:
    """Label 1 on the foreground of a [0, 1] slice (the whole slice but its border when
    the foreground is too small to measure texture on); pyradiomics needs a background."""
    mask = foreground_mask(unit, "MR").astype(np.uint8)
    if mask.sum() < 0.05 * mask.size:
        mask[:] = 1
    mask[0, :] = 0
    return mask


def radiomics_features(
    slices: Sequence[np.ndarray], progress: Callable[[int], None] | None = None
) -> tuple[np.ndarray, list[str]]:
    """(N, F) pyradiomics features of 2D [0, 1] slices and the feature names."""
    import SimpleITK as sitk

    extractor = _extractor()
    rows, names = [], None
    for i, unit in enumerate(slices):
        image = sitk.GetImageFromArray(np.asarray(unit, np.float32))
        mask = sitk.GetImageFromArray(radiomics_mask(np.asarray(unit, np.float32)))
        mask.CopyInformation(image)
        result = extractor.execute(image, mask)
        values = {k: float(v) for k, v in result.items() if not k.startswith("diagnostics")}
        if names is None:
            names = sorted(values)
        rows.append([values[k] for k in names])
        if progress is not None:
            progress(i + 1)
    if names is None:
        raise InvalidInput("no slices to measure")
    return np.asarray(rows, np.float64), names


class DomainReader:
    """The shipped (or a trained) attribute classifier: attributes and pooled features."""

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu") -> None:
        pretrained = load_pretrained(folder, "classifier")
        self.card = pretrained.card
        self.config = ClassifierConfig.from_dict(self.card.section("classifier"))
        self.net = pretrained.modules["classifier"].to(device)
        self.device = torch.device(device)
        if self.card.image_size is None:
            raise InvalidInput("the classifier's card has no task_info.image.size", folder)
        self.size = self.card.image_size

    def _batches(self, slices: Sequence[np.ndarray], batch: int = 64):
        for i in range(0, len(slices), batch):
            x = torch.from_numpy(np.stack([np.asarray(s, np.float32) for s in slices[i : i + batch]]))[
                :, None
            ]
            if tuple(x.shape[-2:]) != self.size:
                x = torch.nn.functional.interpolate(x, size=self.size, mode="bilinear", antialias=True)
            yield to_model_range(x.clamp(0, 1)).to(self.device)

    @torch.inference_mode()
    def features(self, slices: Sequence[np.ndarray]) -> np.ndarray:
        """(N, D) pooled features of [0, 1] slices."""
        return (
            torch.cat([self.net.features(x) for x in self._batches(slices)]).cpu().numpy().astype(np.float64)
        )

    @torch.inference_mode()
    def attributes(self, slices: Sequence[np.ndarray]) -> dict[str, list[str]]:
        """``{attribute: [predicted class per slice]}``."""
        out: dict[str, list[str]] = {name: [] for name in self.config.attributes}
        for x in self._batches(slices):
            logits = self.net(x)
            for name, classes in self.config.attributes.items():
                out[name] += [classes[i] for i in logits[name].argmax(1).tolist()]
        return out
