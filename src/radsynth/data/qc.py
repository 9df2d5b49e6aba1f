"""Quality control of a manifest: what would silently spoil training or evaluation.

Checks, in order of how badly they bite:

- **split leaks**: a subject in two splits, or the same pixels in two splits (the test
  set is then partly training data and every metric is optimistic);
- **missing** files and **unreadable** files (a crash in epoch 3, or a silent skip);
- **exact duplicates**: files whose decoded pixels are identical (SHA-256 of dtype,
  shape and pixel bytes, so a re-saved PNG with other text chunks still counts);
- **near duplicates**: images of *different* subjects whose 16 x 16 thumbnails
  (antialiased, intensities standardised) have a Pearson correlation >= 0.98. Within one
  subject, neighbouring slices and windows are expected to be that similar, so those
  pairs are not reported; across subjects it means one image filed twice under two IDs.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from radsynth.data.manifest import Record, load_manifest
from radsynth.data.splits import split_leaks
from radsynth.errors import RadsynthError

NEAR_DUPLICATE_CORRELATION = 0.98
THUMBNAIL = 16  # pixels per side


@dataclass
class QCReport:
    """Counts and offending items; ``ok`` when nothing but near duplicates was found."""

    manifest: str
    records: int = 0
    files: int = 0
    missing: list[str] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    exact_duplicates: list[list[str]] = field(default_factory=list)
    near_duplicates: list[tuple[str, str, float]] = field(default_factory=list)
    subject_leaks: dict[str, list[str]] = field(default_factory=dict)
    duplicate_leaks: list[list[str]] = field(default_factory=list)

    @property
    def has_leak(self) -> bool:
        """True when test data is also training data (same subject or same pixels)."""
        return bool(self.subject_leaks or self.duplicate_leaks)

    @property
    def ok(self) -> bool:
        return not (self.has_leak or self.missing or self.unreadable or self.exact_duplicates)

    def counts(self) -> dict[str, int]:
        """The numbers a summary table shows."""
        return {
            "records": self.records,
            "files": self.files,
            "missing": len(self.missing),
            "unreadable": len(self.unreadable),
            "exact duplicate groups": len(self.exact_duplicates),
            "near duplicate pairs": len(self.near_duplicates),
            "subjects in two splits": len(self.subject_leaks),
            "duplicates across splits": len(self.duplicate_leaks),
        }

    def problems(self, limit: int = 10) -> list[str]:
        """One line per offending item (at most ``limit`` per kind), ready to print."""
        lines = [f"{p}: file missing" for p in self.missing[:limit]]
        lines += [f"{p}: unreadable ({why})" for p, why in self.unreadable[:limit]]
        lines += [
            f"{s}: subject in splits {', '.join(v)}" for s, v in list(self.subject_leaks.items())[:limit]
        ]
        lines += [
            f"{g[0]}: same pixels in other splits as {', '.join(g[1:])}" for g in self.duplicate_leaks[:limit]
        ]
        lines += [f"{g[0]}: exact duplicate of {', '.join(g[1:])}" for g in self.exact_duplicates[:limit]]
        lines += [f"{a}: near duplicate of {b} (r = {r:.3f})" for a, b, r in self.near_duplicates[:limit]]
        return lines


def _pixel_hash(array: np.ndarray) -> str:
    h = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def thumbnail(array: np.ndarray, size: int = THUMBNAIL) -> np.ndarray:
    """A ``size`` x ``size`` standardised (zero mean, unit norm) grey copy, float32, flat.

    A 3D array gives the thumbnail of its middle slice; RGB is averaged to grey. A
    constant image gives zeros (it correlates with nothing).
    """
    a = np.asarray(array, np.float32)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        a = a[..., :3].mean(axis=-1)
    while a.ndim > 2:
        a = a[a.shape[0] // 2]
    pil = PILImage.fromarray(np.ascontiguousarray(a), mode="F")
    t = np.asarray(pil.resize((size, size), PILImage.Resampling.BILINEAR), np.float32).ravel()
    t = t - t.mean()
    norm = float(np.linalg.norm(t))
    return t / norm if norm > 1e-6 else np.zeros_like(t)


def near_duplicate_pairs(
    thumbs: np.ndarray, owners: list[str], threshold: float = NEAR_DUPLICATE_CORRELATION
) -> list[tuple[int, int, float]]:
    """Index pairs (i < j) with correlation >= ``threshold`` and different owners (subjects).

    ``thumbs`` rows are standardised thumbnails, so a dot product is the Pearson
    correlation; done in blocks of rows to bound memory on large corpora.
    """
    pairs = []
    owners_arr = np.array(owners)
    for start in range(0, len(thumbs), 1024):
        block = thumbs[start : start + 1024] @ thumbs.T  # (block, N)
        rows, cols = np.nonzero(block >= threshold)
        for i, j in zip(rows + start, cols, strict=True):
            if i < j and owners_arr[i] != owners_arr[j]:
                pairs.append((int(i), int(j), float(block[i - start, j])))
    return pairs


def _default_reader(path: Path) -> np.ndarray:
    from radsynth.io import read_image

    return read_image(path).array


def check_records(
    records: Iterable[Record],
    root: str | Path,
    near_threshold: float = NEAR_DUPLICATE_CORRELATION,
    reader: Callable[[Path], np.ndarray] | None = None,
    manifest: str = "",
) -> QCReport:
    """Run every check on ``records`` whose paths are relative to ``root``."""
    records = list(records)
    reader = reader or _default_reader
    report = QCReport(manifest=manifest or str(root), records=len(records))
    report.subject_leaks = split_leaks(records)
    by_path: dict[str, list[Record]] = defaultdict(list)
    for r in records:
        by_path[r.path].append(r)
    report.files = len(by_path)
    hashes: dict[str, list[str]] = defaultdict(list)
    thumbs, owners, names, digests = [], [], [], []
    for rel, recs in by_path.items():
        path = Path(root) / rel
        if not path.is_file():
            report.missing.append(rel)
            continue
        try:
            array = reader(path)
        except (RadsynthError, OSError, ValueError) as err:
            report.unreadable.append((rel, str(getattr(err, "problem", err))))
            continue
        digest = _pixel_hash(array)
        hashes[digest].append(rel)
        digests.append(digest)
        thumbs.append(thumbnail(array))
        owners.append(recs[0].subject)
        names.append(rel)
    split_of = {rel: {r.split for r in recs} for rel, recs in by_path.items()}
    for group in hashes.values():
        if len(group) > 1:
            report.exact_duplicates.append(sorted(group))
            if len(set().union(*(split_of[g] for g in group))) > 1:
                report.duplicate_leaks.append(sorted(group))
    if thumbs:
        for i, j, r in near_duplicate_pairs(np.stack(thumbs), owners, near_threshold):
            if digests[i] != digests[j]:  # identical pixels are reported as exact duplicates
                report.near_duplicates.append((names[i], names[j], round(r, 4)))
    return report


def check_manifest(path: str | Path, near_threshold: float = NEAR_DUPLICATE_CORRELATION) -> QCReport:
    """Load a manifest and check it (paths are relative to the manifest's folder)."""
    path = Path(path)
    return check_records(load_manifest(path), path.parent, near_threshold, manifest=str(path))
