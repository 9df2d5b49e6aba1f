"""The Harvard Whole Brain Atlas CT/MR pairs as a paired corpus with case-level folds.

``../shared/data/harvard_aanlib_ct_mri`` holds 184 co-registered axial CT/MR slices
(256 x 256, 8-bit) of 10 cases; a file's name is its case (the prefix) and its slice (the
last three digits). The source repository's own train/test split puts slices of one case
on both sides, so it is not used: the cases are dealt into ``FOLDS`` folds (two cases
each, seeded), and cross-validation holds out one fold at a time.

The CT is windowed 8-bit, not Hounsfield units: records keep the atlas's 0..255 scale
(stored as [0, 1]) and say so (``units: atlas 8-bit``); nothing here calibrates HU. The
MR is T2-like. Each slice gets a head mask: the largest hole-filled component above the
background in both images, so the CT's head holder and the MR's burned-in text fall
outside it (both are on one side only).

The atlas states no pixel spacing. ``ASSUMED_SPACING_MM`` is an estimate from anatomy (a
typical adult skull breadth of ~140 mm spans ~175 pixels at the orbits), stated in every
record and card, so ``radsynth translate`` resamples other MR volumes to about the scale
the model learnt.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from radsynth.data.describe import describe
from radsynth.data.manifest import Record, real_png_text, write_manifest
from radsynth.errors import InvalidInput
from radsynth.io.atomic import atomic_path, write_text_atomic

FOLDER = "harvard_aanlib_ct_mri"
SOURCE = "Harvard Whole Brain Atlas (AANLIB), CT-MRI pairs"
LICENCE = (
    "research use only, with attribution to The Whole Brain Atlas (K. A. Johnson, J. A. Becker, "
    "Harvard Medical School); no open licence stated"
)
FOLDS = 5
SEED = 0
ASSUMED_SPACING_MM = 0.8
UNITS = "atlas 8-bit"
BACKGROUND = 20  # 8-bit level above which a pixel is head, in either image (the SOURCE.md check)
BUILDER_VERSION = "1"
_SIDE = {"t2-like": "MRI", "ct": "CT"}  # stored contrast -> the atlas folder
_NAME = re.compile(r"^(?P<case>\d+)(?P<slice>\d{3})\.png$")


@dataclass(frozen=True)
class AtlasCorpus:
    """A built atlas corpus: its folder, records and ``folds`` (fold -> case names)."""

    folder: Path
    records: list[Record]
    folds: list[list[str]]

    @property
    def manifest(self) -> Path:
        return self.folder / "manifest.jsonl"

    def training_cases(self, fold: int) -> list[str]:
        """Every case outside ``fold``."""
        return sorted(c for k, cases in enumerate(self.folds) if k != fold for c in cases)


def atlas_pairs(root: Path) -> dict[str, list[tuple[str, Path, Path]]]:
    """case -> [(slice, MR path, CT path)] of the atlas folder ``root``; ``InvalidInput``
    when the folder is not the atlas or a slice has no pair."""
    mr_dir, ct_dir = root / "MRI", root / "CT"
    if not (mr_dir.is_dir() and ct_dir.is_dir()):
        raise InvalidInput("not the Harvard atlas pairs: expected folders MRI/ and CT/", root)
    cases: dict[str, list[tuple[str, Path, Path]]] = {}
    for ct in sorted(ct_dir.glob("*.png")):
        match = _NAME.match(ct.name)
        if match is None:
            raise InvalidInput("atlas file names are <case><3-digit slice>.png", ct)
        mr = mr_dir / ct.name
        if not mr.is_file():
            raise InvalidInput(f"CT slice {ct.name} has no MR pair", mr)
        cases.setdefault(match["case"], []).append((match["slice"], mr, ct))
    unpaired = sorted({p.name for p in mr_dir.glob("*.png")} - {p.name for p in ct_dir.glob("*.png")})
    if unpaired:
        raise InvalidInput(f"MR slice {unpaired[0]} has no CT pair", ct_dir / unpaired[0])
    if len(cases) < FOLDS:
        raise InvalidInput(
            f"need at least {FOLDS} cases for {FOLDS}-fold cross-validation, found {len(cases)}", root
        )
    return cases


def head_mask(mr: np.ndarray, ct: np.ndarray) -> np.ndarray:
    """The head in both images: each image's largest component above ``BACKGROUND``, holes
    filled, intersected."""

    def largest(image: np.ndarray) -> np.ndarray:
        labels, n = ndimage.label(image > BACKGROUND)
        if n == 0:
            return np.zeros(image.shape, bool)
        sizes = ndimage.sum_labels(np.ones_like(labels), labels, range(1, n + 1))
        return ndimage.binary_fill_holes(labels == 1 + int(np.argmax(sizes)))

    return largest(mr) & largest(ct)


def assign_folds(cases: list[str], folds: int = FOLDS, seed: int = SEED) -> list[list[str]]:
    """Cases dealt into ``folds`` folds after a seeded shuffle (sizes differ by at most one)."""
    order = np.random.default_rng(seed).permutation(sorted(cases)).tolist()
    return [sorted(order[k::folds]) for k in range(folds)]


def _key(root: Path) -> str:
    sums = root / "SHA256SUMS"
    listing = (
        sums.read_bytes()
        if sums.is_file()
        else "\n".join(sorted(p.name for p in root.rglob("*.png"))).encode()
    )
    return hashlib.sha256(listing + f"{BUILDER_VERSION}:{FOLDS}:{SEED}".encode()).hexdigest()[:16]


def build_atlas(root: str | Path, out: str | Path) -> AtlasCorpus:
    """Build (or reuse, when its key matches) the atlas corpus from ``root`` into ``out``:
    ``images/<case>/{mr,ct}/<slice>.png`` (8-bit, as the atlas has them), ``masks/``,
    ``manifest.jsonl`` (``extra``: pair id, mask, fold, units) and ``folds.json``."""
    from PIL import Image as Pil

    from radsynth.io import write_png
    from radsynth.io.image import Image

    root, out = Path(root), Path(out)
    key = _key(root) if root.is_dir() else None
    if key is None:
        raise InvalidInput("no such folder", root)
    if (out / "folds.json").is_file():
        info = json.loads((out / "folds.json").read_text(encoding="utf-8"))
        if info.get("key") == key:
            from radsynth.data.manifest import load_manifest

            return AtlasCorpus(out, load_manifest(out / "manifest.jsonl"), info["folds"])
    cases = atlas_pairs(root)
    folds = assign_folds(list(cases))
    fold_of = {c: k for k, members in enumerate(folds) for c in members}
    records: list[Record] = []
    spacing = (ASSUMED_SPACING_MM, ASSUMED_SPACING_MM)
    with atomic_path(out) as tmp:
        for case, slices in sorted(cases.items()):
            for index, mr_path, ct_path in slices:
                mr, ct = (np.asarray(Pil.open(p).convert("L")) for p in (mr_path, ct_path))
                pair_id = f"atlas-{case}/{index}"
                mask_rel = f"masks/{case}/{index}.png"
                mask = head_mask(mr, ct)
                write_png(Image(mask.astype(np.uint8), spacing=spacing), tmp / mask_rel, bits=8)
                for modality, contrast, pixels in (("MR", "t2-like", mr), ("CT", "ct", ct)):
                    text = describe("axial", modality, "brain", "T2-weighted" if modality == "MR" else None)
                    rel = f"images/{case}/{contrast}/{index}.png"
                    chunks = real_png_text(text, SOURCE, LICENCE, f"atlas-{case}", "atlas corpus")
                    write_png(Image(pixels.astype(np.uint8), spacing=spacing), tmp / rel, bits=8, text=chunks)
                    records.append(
                        Record(
                            path=rel,
                            text=text,
                            modality=modality,
                            subject=f"atlas-{case}",
                            split="train",
                            source=SOURCE,
                            licence=LICENCE,
                            anatomy="brain",
                            plane="axial",
                            contrast=contrast,
                            spacing=spacing,
                            shape=pixels.shape,
                            extra={
                                "pair_id": pair_id,
                                "mask": mask_rel,
                                "fold": fold_of[case],
                                "slice": int(index),
                                "units": UNITS if modality == "CT" else "8-bit",
                                "source_file": f"{FOLDER}/{_SIDE[contrast]}/{ct_path.name}",
                            },
                        )
                    )
        write_manifest(records, tmp / "manifest.jsonl")
        folds_named = [[f"atlas-{c}" for c in members] for members in folds]
        write_text_atomic(
            tmp / "folds.json", json.dumps({"key": key, "folds": folds_named, "seed": SEED}, indent=2) + "\n"
        )
    return AtlasCorpus(out, records, folds_named)
