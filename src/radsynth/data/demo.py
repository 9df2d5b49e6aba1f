"""The demo corpus: real CT and MR slices from installed packages, with captions and splits.

``build_demo`` cuts every available source volume (see :mod:`radsynth.data.sources`) into
display-oriented square slices, normalises them per modality (one record per CT window),
captions each from what is known (modality, contrast, anatomy, plane, level, CT window,
the finding's presence, side and size from its mask), writes 16-bit PNGs and a JSONL
manifest, and splits by subject. The build happens in a temporary folder renamed into
place at the end, so an interrupted build leaves nothing half-made; a finished build is
reused while its key (size, builder version, sources found) is unchanged.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from radsynth.data.describe import describe, finding_phrase
from radsynth.data.findings import centroid_lps, lesion_facts, level_fraction, level_words, sagittal_words
from radsynth.data.manifest import Record, load_manifest, real_png_text, summarise, write_manifest
from radsynth.data.normalise import foreground_mask, grey, normalise
from radsynth.data.slices import body_extent, extract_slice, informative_slices, resize_square
from radsynth.data.sources import Loaded, SourceMissing, SourceSpec, find_sources
from radsynth.data.splits import split_records
from radsynth.errors import InvalidInput, RadsynthError
from radsynth.io.atomic import atomic_path, write_text_atomic
from radsynth.io.cache import cache_root
from radsynth.io.image import Image

BUILDER_VERSION = "1"
SIZES = (64, 128, 256)
STEP_MM = 3.0  # thin-slice volumes: one slice every 3 mm (neighbours 1 mm apart are near copies)
MIN_AREA_OF_MAX = 0.15  # skip slices whose foreground is under 15 % of the fullest slice's
MIN_LESION_PIXELS = 1.5  # a lesion narrower than 1.5 output pixels is neither shown nor absent
# Subjects pinned to a split: one CT and one MR with findings held out for test, their
# twins kept for training (else the only lesion MR could land in val and none in train).
PINNED = {
    "pyradiomics-lung1": "train",
    "pyradiomics-lung2": "test",
    "pyradiomics-brain1": "train",
    "pyradiomics-brain2": "test",
}
SEED = 0


def default_demo_dir(size: int) -> Path:
    return cache_root() / f"demo-{size}"


@dataclass
class DemoCorpus:
    """A built (or reused) demo corpus and how it came about."""

    folder: Path
    records: list[Record]
    cached: bool
    seconds: float
    warnings: list[str] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    @property
    def manifest(self) -> Path:
        return self.folder / "manifest.jsonl"

    def summary(self) -> dict[str, dict[str, int]]:
        """Counts per modality, anatomy, finding and split."""
        return summarise(self.records)


@dataclass
class _Volume:
    """A loaded source with what every slice of it needs: normalised copies per window,
    the body mask and the body centroid (LPS mm, for sides)."""

    spec: SourceSpec
    loaded: Loaded
    body: np.ndarray
    centroid: np.ndarray | None
    normalised: dict[str | None, Image]


def _prepare(spec: SourceSpec, loaded: Loaded) -> _Volume:
    image = loaded.image
    body = foreground_mask(grey(image), spec.modality)
    centroid = centroid_lps(image, body) if spec.sided and image.spatial_ndim == 3 else None
    if spec.windows:
        normalised = {w: normalise(image, window=w) for w in spec.windows}
    else:
        normalised = {None: normalise(image, modality=spec.modality, mask=body)}
    return _Volume(spec, loaded, body, centroid, normalised)


def _level(vol: _Volume, plane: str, position: float, first: float, last: float) -> str | None:
    """The slice's level in words, or None where the image is not the whole organ."""
    if not vol.spec.whole:
        return None
    if plane == "sagittal":
        if vol.centroid is None:
            return None
        return sagittal_words(position - vol.centroid[0], (last - first) / 2)
    return level_words(plane, level_fraction(position, first, last), vol.spec.anatomy)


def _finding(
    vol: _Volume, raw, lesion: np.ndarray | None, out_spacing: float
) -> tuple[dict, str | None] | None:
    """(labels, phrase) for a slice; None when the lesion is too small to say either way."""
    spec = vol.spec
    if spec.finding is None:
        if spec.normal:
            return {"finding": "none"}, finding_phrase("none", spec.anatomy, word="lesion")
        return {"finding": "unknown"}, None
    if lesion is None or not lesion.any():
        return {"finding": "none"}, finding_phrase("none", spec.anatomy, word=spec.finding)
    facts = lesion_facts(raw, lesion, vol.centroid)
    if facts["size_mm"] < MIN_LESION_PIXELS * out_spacing:
        return None
    labels = {"finding": spec.finding, **facts}
    phrase = finding_phrase("present", spec.anatomy, facts.get("side"), facts["size_mm"], spec.finding)
    return labels, phrase


def _write(spec: SourceSpec, image, rel: str, folder: Path, text: str) -> None:
    from radsynth.io import write_png

    facts = real_png_text(
        text, f"{spec.package}: {spec.file}", spec.licence, spec.subject, f"demo builder {BUILDER_VERSION}"
    )
    write_png(image, folder / rel, bits=16, value_range=(0.0, 1.0), text=facts)


def _record(spec: SourceSpec, rel: str, text: str, image, plane: str, window, labels, extra) -> Record:
    return Record(
        path=rel,
        text=text,
        modality=spec.modality,
        subject=spec.subject,
        split="train",  # set by split_records once every record is known
        source=spec.package,
        licence=spec.licence,
        anatomy=spec.anatomy,
        plane=plane,
        contrast=spec.contrast,
        window=window,
        labels=labels,
        spacing=tuple(round(s, 4) for s in image.spacing),
        shape=tuple(image.array.shape),
        extra={"source_file": spec.file, **({"note": spec.note} if spec.note else {}), **extra},
    )


def _slice_extra(meta: dict) -> dict:
    sl = meta["slice"]
    keys = (
        "index",
        "count",
        "position_mm",
        "thickness_mm",
        "origin_lps",
        "row_direction",
        "column_direction",
    )
    out = {f"slice_{k}" if k in ("index", "count") else k: sl[k] for k in keys}
    out["origin_lps"] = [round(v, 3) for v in out["origin_lps"]]
    out["position_mm"] = round(out["position_mm"], 3)
    return out


def _volume_records(vol: _Volume, size: int, folder: Path, skipped: Counter) -> list[Record]:
    spec, image = vol.spec, vol.loaded.image
    # Pad with the darkest value of the whole volume (air), the same on every slice.
    air = {window: float(norm.array.min()) for window, norm in vol.normalised.items()}
    records = []
    for plane in spec.planes:
        chosen, dropped = informative_slices(image, plane, vol.body, MIN_AREA_OF_MAX, STEP_MM)
        skipped["little foreground"] += dropped
        first, last = body_extent(image, plane, vol.body) or (0.0, 0.0)
        for index in chosen:
            raw, lesion = extract_slice(image, plane, index, vol.loaded.mask)
            rows, cols = raw.array.shape
            out_spacing = max(rows * raw.spacing[1], cols * raw.spacing[0]) / size
            finding = _finding(vol, raw, lesion, out_spacing)
            if finding is None:
                skipped["lesion too small to call"] += 1
                continue
            labels, phrase = finding
            sl = raw.metadata["slice"]
            level = _level(vol, plane, sl["position_mm"], first, last)
            for window, norm in vol.normalised.items():
                pixels = resize_square(extract_slice(norm, plane, index)[0], size, background=air[window])
                text = describe(plane, spec.modality, spec.anatomy, spec.contrast, window, level, phrase)
                rel = f"images/{spec.key}/{plane}_{index:03d}{'_' + window if window else ''}.png"
                _write(spec, pixels, rel, folder, text)
                extra = {**_slice_extra(pixels.metadata), **({"level": level} if level else {})}
                records.append(_record(spec, rel, text, pixels, plane, window, labels, extra))
    return records


def _image_records(vol: _Volume, size: int, folder: Path) -> list[Record]:
    """A 2D source: one record, no level (one slice says nothing about where it lies)."""
    spec = vol.spec
    (window, norm), *_ = vol.normalised.items()
    pixels = resize_square(norm, size, background=float(norm.array.min()))
    labels, phrase = _finding(vol, norm, None, 1.0) or ({"finding": "unknown"}, None)
    plane = spec.planes[0]
    text = describe(plane, spec.modality, spec.anatomy, spec.contrast, window, None, phrase)
    rel = f"images/{spec.key}/{plane}.png"
    _write(spec, pixels, rel, folder, text)
    return [_record(spec, rel, text, pixels, plane, window, labels, {})]


def _key(size: int, specs: list[SourceSpec]) -> dict:
    return {"size": size, "builder": BUILDER_VERSION, "sources": sorted(s.key for s in specs)}


def _cached(folder: Path, key: dict) -> dict | None:
    """The saved build info when ``folder`` holds a finished build with this key."""
    try:
        info = json.loads((folder / "corpus.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if info.get("key") == key and (folder / "manifest.jsonl").is_file() else None


def build_demo(
    out: str | Path | None = None,
    size: int = 64,
    cache: str | Path | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> DemoCorpus:
    """Build (or reuse) the demo corpus in ``out`` (default ``<cache>/demo-<size>``).

    ``size`` is the square slice side in pixels (64, 128, or 256: near the native
    resolution of the sources, which restoration models train on in crops). ``cache`` holds downloaded
    sources (default :func:`cache_root`). ``log`` receives progress and warning lines.
    """
    if size not in SIZES:
        raise InvalidInput(f"--size must be one of {', '.join(map(str, SIZES))}, got {size}")
    start = time.perf_counter()
    log = log or (lambda line: None)
    cache = Path(cache) if cache is not None else cache_root()
    folder = Path(out) if out is not None else cache / f"demo-{size}"
    specs, warnings = find_sources(cache / "sources")
    for line in warnings:
        log(line)
    if not specs:
        raise InvalidInput("no demo source is installed (see the warnings above)")
    key = _key(size, specs)
    info = None if force else _cached(folder, key)
    if info is not None:
        records = load_manifest(folder / "manifest.jsonl")
        seconds = time.perf_counter() - start
        return DemoCorpus(folder, records, True, seconds, warnings, info.get("skipped", {}), key["sources"])
    records, skipped = [], Counter()
    with atomic_path(folder) as tmp:
        tmp.mkdir(parents=True)
        for spec in specs:
            try:
                vol = _prepare(spec, spec.load())
            except (RadsynthError, SourceMissing, OSError) as err:
                line = f"{spec.key}: skipped ({err})"
                warnings.append(line)
                log(line)
                continue
            log(f"{spec.key}: slicing")
            if vol.loaded.image.spatial_ndim == 3:
                records += _volume_records(vol, size, tmp, skipped)
            else:
                records += _image_records(vol, size, tmp)
        records = split_records(records, seed=SEED, fixed=PINNED)
        write_manifest(records, tmp / "manifest.jsonl")
        seconds = time.perf_counter() - start
        info = {"key": key, "seconds": round(seconds, 2), "skipped": dict(skipped), "warnings": warnings}
        write_text_atomic(tmp / "corpus.json", json.dumps(info, indent=2) + "\n")
    return DemoCorpus(folder, records, False, seconds, warnings, dict(skipped), key["sources"])
