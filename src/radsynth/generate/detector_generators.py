"""Every generator the project has, as a source of unmarked synthetic images for the detector.

Each :class:`SyntheticSource` draws ``n`` images for a split: text-to-image models from captions
of that split's subjects (the demo corpus' for the demo family, the chest X-ray sources'
for ``cxr-ldm``), translators from real inputs of that split's cases (Harvard atlas MR
slices stacked per case, the glioma volumes). A translator's output keeps the real
anatomy, so it is the hard case: only the network's own trace tells it from the real scan.
Images come back as the pipelines return them, before any watermark or marking.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from radsynth import DEFAULT_FAMILY
from radsynth.data.cxr import caption
from radsynth.data.cxr_sources import IEEE, KERMANY, NIH, READERS
from radsynth.data.manifest import load_manifest, resolve_manifest
from radsynth.io import Image, read_image

CXR_FAMILY = "cxr-128"
TRANSLATIONS = ("denoise", "sr2", "mr2ct", "t1pd")
PER_CAPTION = 4
Drawn = tuple[Image, str, str]  # (image, subject it came from, caption or input)


@dataclass(frozen=True)
class SyntheticSource:
    name: str
    family: str  # the shipped family (or task) behind it, for the card
    draw: Callable[[Path, str, int, int], Iterator[Drawn]]  # (root, split, n, seed)


def _split_of(subject: str, seed: int) -> str:
    from radsynth.generate.detector_set import subject_split

    return subject_split(subject, seed)


def _captioned(kind: str, family: str, captions: Callable[[Path, str, int], list[tuple[str, str]]]):
    def draw(root: Path, split: str, n: int, seed: int) -> Iterator[Drawn]:
        from radsynth.generate.models import load_pipeline

        pairs = captions(root, split, seed)
        if not pairs or n <= 0:
            return
        pipeline = load_pipeline(family, kind)
        rng = np.random.default_rng([seed, split == "test"])
        picks = rng.choice(len(pairs), min(len(pairs), -(-n // PER_CAPTION)), replace=False)
        made = 0
        for k, i in enumerate(picks):
            subject, text = pairs[int(i)]
            count = min(PER_CAPTION, n - made)
            for image in pipeline.generate(text, n=count, seed=seed + 1000 * k + 7 * (split == "test")):
                yield image, subject, text
            made += count

    return draw


def demo_captions(root: Path, split: str, seed: int) -> list[tuple[str, str]]:
    """The demo corpus' captions of ``split`` (its val and test subjects are the test side)."""
    records = load_manifest(resolve_manifest("demo:64"))
    wanted = {"train"} if split == "train" else {"val", "test"}
    return sorted({(f"demo:{r.subject}", r.text) for r in records if r.split in wanted})


def cxr_captions(root: Path, split: str, seed: int) -> list[tuple[str, str]]:
    """Captions (without clinical notes) of the shareable chest X-ray sources' patients."""
    pairs = []
    for source in (KERMANY, NIH, IEEE):
        _, reader = READERS[source]
        for item in reader(root / source).items:
            subject = f"{source}:{item.subject}"
            if _split_of(subject, seed) == split:
                pairs.append((subject, caption(replace(item, note=None))))
    return sorted(set(pairs))


def _mr_volumes(root: Path, split: str, seed: int) -> Iterator[tuple[str, Image]]:
    """Real MR inputs of ``split``: each atlas case's MR slices stacked, each glioma contrast."""
    cases: dict[str, list[Path]] = {}
    for path in sorted((root / "harvard_aanlib_ct_mri" / "MRI").glob("*.png")):
        cases.setdefault(path.stem[:-3], []).append(path)
    for case, paths in sorted(cases.items()):
        subject = f"aanlib:{case}"
        if _split_of(subject, seed) == split:
            stack = np.stack([read_image(p).array.astype(np.float32) for p in paths])
            yield subject, Image(stack, modality="MR")
    for path in sorted((root / "brain_mri_multicontrast").glob("*/*.nii.gz")):
        subject = f"glioma:{path.parent.name}"
        if _split_of(subject, seed) == split:
            volume = read_image(path)
            inside = np.flatnonzero((volume.array > 0).mean(axis=(1, 2)) > 0.05)
            picks = inside[np.linspace(0, len(inside) - 1, min(12, len(inside))).astype(int)]
            yield (
                subject,
                Image(volume.array[picks].astype(np.float32), spacing=volume.spacing, modality="MR"),
            )


def _degraded(task: str, volume: Image, rng: np.random.Generator) -> Image:
    """The input a restoration model is meant for: noisy (denoise), half resolution (sr2)."""
    array = volume.array.astype(np.float32)
    if task == "denoise":
        sigma = 0.04 * float(np.percentile(array, 99.5))
        noisy = np.hypot(
            array + sigma * rng.standard_normal(array.shape), sigma * rng.standard_normal(array.shape)
        )
        return volume.with_array(noisy.astype(np.float32))
    if task == "sr2":
        rows, cols = array.shape[1] // 2 * 2, array.shape[2] // 2 * 2
        half = array[:, :rows, :cols].reshape(array.shape[0], rows // 2, 2, cols // 2, 2).mean(axis=(2, 4))
        return Image(half, modality="MR")
    return volume


def _translated(task: str):
    def draw(root: Path, split: str, n: int, seed: int) -> Iterator[Drawn]:
        from radsynth.translate import load_translator, translate_volume

        if n <= 0:
            return
        model = load_translator(task)
        rng = np.random.default_rng([seed, len(task), split == "test"])
        outputs: list[Drawn] = []
        for subject, volume in _mr_volumes(root, split, seed):
            result = translate_volume(_degraded(task, volume, rng), task, model)
            outputs += [(Image(plane, modality=result.modality), subject, task) for plane in result.array]
        if outputs:
            for i in np.sort(rng.choice(len(outputs), min(n, len(outputs)), replace=False)):
                yield outputs[int(i)]

    return draw


SYNTHETIC_SOURCES: dict[str, SyntheticSource] = {
    g.name: g
    for g in (
        *(
            SyntheticSource(
                f"demo-{kind}", f"{DEFAULT_FAMILY}/{kind}", _captioned(kind, DEFAULT_FAMILY, demo_captions)
            )
            for kind in ("ldm", "gan", "vae")
        ),
        SyntheticSource("cxr-ldm", f"{CXR_FAMILY}/ldm", _captioned("ldm", CXR_FAMILY, cxr_captions)),
        *(SyntheticSource(f"translate-{t}", f"translate {t}", _translated(t)) for t in TRANSLATIONS),
    )
}
