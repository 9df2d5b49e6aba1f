"""The chest X-ray corpus: the real CXR data sets in ``../shared/data`` as one manifest.

``build_cxr`` reads every data set found under ``root`` (see
:mod:`radsynth.data.cxr_sources`), drops exact duplicates, captions each image from what
its source states, writes 16-bit PNGs in [0, 1] and a JSONL manifest, and splits by
patient with val and test patients held out from every source. Images that are not
square (Figure 1) are letterboxed (padded with black, never cropped), as the three 256 px
sources already are; their bars are kept. The build happens in a temporary folder
renamed into place at the end; a finished build is reused while its key (size, seed,
builder version, the data sets and their checksum lists) is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from radsynth.data.cxr_sources import NOT_REDISTRIBUTABLE, READERS, SHORT_LICENCES, CxrItem, SourceRead
from radsynth.data.manifest import Record, load_manifest, real_png_text, write_manifest
from radsynth.data.qc import near_duplicate_pairs, thumbnail
from radsynth.data.splits import assign_splits, split_leaks
from radsynth.errors import InvalidInput
from radsynth.io.atomic import atomic_path, write_text_atomic

BUILDER_VERSION = "2"
SIZES = (128, 256)
FRACTIONS = (0.7, 0.15, 0.15)  # train, val, test: of each source's patients
SEED = 0
# Thumbnail correlation at which two images of *different* patients count as one picture
# filed twice; both patients are then kept in one split (see qc.near_duplicate_pairs).
NEAR_DUPLICATE_CORRELATION = 0.99
NOTE_SENTENCES = 2  # of a clinical note, in the caption
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")


def default_root() -> Path:
    """``shared/data`` found beside the repository root or above the current folder."""
    here = Path(__file__).resolve()
    for base in [*here.parents, *Path.cwd().resolve().parents, Path.cwd().resolve()]:
        candidate = base / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return Path("..") / "shared" / "data"


@dataclass
class CxrCorpus:
    """A built (or reused) chest X-ray corpus and how it came about."""

    folder: Path
    records: list[Record]
    cached: bool
    seconds: float
    missing: list[str] = field(default_factory=list)  # "name: why" per data set not built
    skipped: dict[str, dict[str, int]] = field(default_factory=dict)  # source -> reason -> count
    near_duplicates: int = 0

    @property
    def manifest(self) -> Path:
        return self.folder / "manifest.jsonl"

    def table(self) -> dict[str, dict[str, object]]:
        """Per source: images, patients, findings, splits, skipped, licence (the summary)."""
        out: dict[str, dict[str, object]] = {}
        by_source: dict[str, list[Record]] = defaultdict(list)
        for r in self.records:
            by_source[r.source].append(r)
        for source, recs in sorted(by_source.items()):
            out[source] = {
                "images": len(recs),
                "patients": len({r.subject for r in recs}),
                "findings": dict(Counter(_finding_key(r) for r in recs).most_common()),
                "splits": {s: sum(r.split == s for r in recs) for s in ("train", "val", "test")},
                "skipped": self.skipped.get(source, {}),
                "licence": SHORT_LICENCES.get(source, recs[0].licence),
            }
        return out


def _finding_key(r: Record) -> str:
    sub = r.labels.get("subtype")
    return f"{r.labels['finding']} ({sub})" if sub else r.labels["finding"]


def caption(item: CxrItem) -> str:
    """What the source states, in words, and nothing more.

    >>> caption(CxrItem("s", Path("x"), "x", "p", view="PA", age=37, age_group="adult",
    ...                 sex="female", finding="normal"))
    'Chest X-ray, PA view, adult, 37 years, female. No finding.'
    """
    view = f"{item.view} view" if item.view else "frontal view"
    if item.view == "lateral":
        view = "lateral view"
    parts = ["Chest X-ray", view]
    if item.age_group:
        parts.append(item.age_group)
    if item.age is not None:
        parts.append("over 89 years" if item.age > 89 else f"{item.age} years")
    elif item.age_text:
        parts.append(f"age {item.age_text}")
    if item.sex:
        parts.append(item.sex)
    text = ", ".join(parts) + ". " + _finding_words(item)
    if item.note:  # the first sentences only: the whole note (up to 783 words) is in extra
        text += " Clinical note: " + " ".join(_SENTENCE.split(item.note)[:NOTE_SENTENCES])
    return text


def _finding_words(item: CxrItem) -> str:
    co = f" with {_join(item.co_findings)}" if item.co_findings else ""
    if item.finding == "normal":
        return "No finding."
    if item.finding == "unknown":
        return "Finding not labelled."
    if item.finding == "other":
        return f"{_join(item.co_findings).capitalize()}; no pneumonia."
    if item.finding == "pneumonia":
        kind = {"COVID-19": "COVID-19 pneumonia", "lipoid": "lipoid pneumonia"}.get(item.subtype or "")
        kind = kind or (f"{item.subtype} pneumonia" if item.subtype else "pneumonia")
        if item.organism and item.subtype not in ("COVID-19",):
            kind += f" ({item.organism})"
        return kind[0].upper() + kind[1:] + co + "."
    return item.finding + co + "."


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _load_pixels(path: Path, size: int) -> np.ndarray:
    """Grey float32 (size, size) in [0, 1]; letterboxed (centred, black bars) if not square."""
    from PIL import Image as PILImage

    with PILImage.open(path) as pic:
        pic.load()
        grey = pic.convert("RGBA") if pic.mode in ("P", "LA", "RGBA") else pic
        if grey.mode == "RGBA":  # composite on black, as the sources' own conversions did
            black = PILImage.new("RGBA", grey.size, (0, 0, 0, 255))
            grey = PILImage.alpha_composite(black, grey)
        grey = grey.convert("L")
    w, h = grey.size
    if w != h:
        scale = size / max(w, h)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        canvas = PILImage.new("L", (size, size), 0)
        canvas.paste(grey.resize((nw, nh), PILImage.Resampling.LANCZOS), ((size - nw) // 2, (size - nh) // 2))
        grey = canvas
    elif w != size:
        grey = grey.resize((size, size), PILImage.Resampling.LANCZOS)
    return np.asarray(grey, np.float32) / 255.0


def _labels(item: CxrItem) -> dict:
    labels: dict = {"finding": item.finding}
    for key in ("subtype", "organism", "age", "age_group", "sex"):
        value = getattr(item, key)
        if value is not None:
            labels[key] = value
    if item.co_findings:
        labels["co_findings"] = item.co_findings
    if item.view:
        labels["view"] = item.view
    # A label, so a training recipe can keep shipped weights clean with
    # ``data.where: {redistributable: true}`` (train.data filters on labels).
    labels["redistributable"] = item.redistributable and item.source not in NOT_REDISTRIBUTABLE
    return labels


def _record(item: CxrItem, rel: str, text: str, size: int) -> Record:
    extra = dict(item.extra)
    if item.note:
        extra["clinical_note"] = item.note
    if item.age_text:
        extra["age_text"] = item.age_text
    return Record(
        path=rel,
        text=text,
        modality="DX",  # "X-ray" in every source; none says DX or CR
        subject=f"{item.source}:{item.subject}",
        split="train",  # set once every record is known
        source=item.source,
        licence=item.licence,
        anatomy="chest",
        plane=item.view or "frontal",
        labels=_labels(item),
        shape=(size, size),
        extra=extra,
    )


def _read_sources(root: Path, log: Callable[[str], None]) -> tuple[list[SourceRead], list[str]]:
    reads, missing = [], []
    for name, (csv_name, reader) in READERS.items():
        folder = root / name
        if not folder.is_dir():
            missing.append(f"{name}: folder not found in {root}")
        elif not (folder / csv_name).is_file():
            found = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
            missing.append(f"{name}: {csv_name} missing (found {found})")
        else:
            try:
                reads.append(reader(folder))
                continue
            except (OSError, KeyError, ValueError, UnicodeDecodeError) as err:
                missing.append(f"{name}: {csv_name} unreadable ({type(err).__name__}: {err})")
        log(missing[-1])
    return reads, missing


def _key(root: Path, size: int, seed: int, names: list[str]) -> dict:
    digest = hashlib.sha256()
    for name in names:
        for listing in ("SHA256SUMS", READERS[name][0]):
            path = root / name / listing
            digest.update(path.read_bytes() if path.is_file() else b"-")
        digest.update(str(len(list((root / name).rglob("*")))).encode())  # a partial copy differs
    return {
        "size": size,
        "seed": seed,
        "builder": BUILDER_VERSION,
        "sources": names,
        "data": digest.hexdigest(),
    }


def _cached(folder: Path, key: dict) -> dict | None:
    try:
        info = json.loads((folder / "corpus.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if info.get("key") == key and (folder / "manifest.jsonl").is_file() else None


class _Groups:
    """Union-find over patients: near duplicates across patients share one split."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = sorted((self.find(a), self.find(b)))
        self.parent[rb] = ra


def _split(records: list[Record], near: list[tuple[int, int, float]], seed: int) -> list[Record]:
    groups = _Groups()
    for r in records:
        groups.find(r.subject)
    for i, j, _ in near:
        groups.union(records[i].subject, records[j].subject)
    # Stratum = source of the group's first patient, so every source gets val and test patients.
    strata = {}
    for r in records:
        strata.setdefault(groups.find(r.subject), r.source)
    splits = assign_splits(strata, seed=seed, fractions=FRACTIONS)
    return [replace(r, split=splits[groups.find(r.subject)]) for r in records]


def build_cxr(
    out: str | Path,
    *,
    scrub: Callable[[str], str],
    size: int = 256,
    root: str | Path | None = None,
    seed: int = SEED,
    force: bool = False,
    log: Callable[[str], None] | None = None,
) -> CxrCorpus:
    """Build (or reuse) the chest X-ray corpus in ``out`` from the data sets under ``root``.

    ``scrub`` removes identifiers from clinical notes before they reach a caption or the
    manifest: pass :func:`radsynth.text.phi.scrub_phi` (``data`` sits below ``text`` in
    the layers, so it is handed in, and required so no note goes out unscrubbed).
    ``size`` is the square side in pixels (128 or 256; the sources are 256). ``log``
    receives one line per data set not found and per kind of skipped input.
    """
    if size not in SIZES:
        raise InvalidInput(f"--size must be one of {', '.join(map(str, SIZES))}, got {size}")
    start = time.perf_counter()
    log = log or (lambda line: None)
    root = Path(root) if root is not None else default_root()
    if not root.is_dir():
        raise InvalidInput("chest X-ray data root not found (pass --root)", root)
    folder = Path(out)
    reads, missing = _read_sources(root, log)
    if not reads:
        raise InvalidInput(f"no chest X-ray data set found (expected {', '.join(READERS)})", root)
    key = _key(root, size, seed, [r.name for r in reads])
    info = None if force else _cached(folder, key)
    if info is not None:
        records = load_manifest(folder / "manifest.jsonl")
        for line in info.get("log", []):
            log(line)
        seconds = time.perf_counter() - start
        return CxrCorpus(folder, records, True, seconds, missing, info["skipped"], info["near_duplicates"])
    from radsynth.io import write_png
    from radsynth.io.image import Image

    skipped: dict[str, Counter] = defaultdict(Counter)
    examples: dict[tuple[str, str], str] = {}
    records, thumbs, seen = [], [], {}

    def skip(source: str, reason: str, example: str) -> None:
        skipped[source][reason] += 1
        examples.setdefault((source, reason), example)

    with atomic_path(folder) as tmp:
        tmp.mkdir(parents=True)
        for read in reads:
            for reason, example in read.problems:
                skip(read.name, reason, example)
            for item in read.items:
                try:
                    pixels = _load_pixels(item.image, size)
                except (OSError, ValueError, SyntaxError) as err:
                    skip(item.source, "image fails to decode", f"{item.image.name} ({err})")
                    continue
                digest = hashlib.sha256(pixels.tobytes()).hexdigest()
                if digest in seen:
                    skip(item.source, "exact duplicate", f"{item.key} = {seen[digest]}")
                    continue
                seen[digest] = f"{item.source}/{item.key}"
                if item.note:
                    item = replace(item, note=scrub(item.note))
                text = caption(item)
                rel = f"images/{item.source}/{item.key}.png"
                image = Image(pixels, modality="DX")
                origin = f"{item.source}: {item.extra.get('source_file', item.image.name)}"
                facts = real_png_text(
                    text, origin, item.licence, item.subject, f"cxr builder {BUILDER_VERSION}"
                )
                write_png(image, tmp / rel, bits=16, value_range=(0.0, 1.0), text=facts)
                records.append(_record(item, rel, text, size))
                thumbs.append(thumbnail(pixels))
        owners = [r.subject for r in records]
        near = near_duplicate_pairs(np.stack(thumbs), owners, NEAR_DUPLICATE_CORRELATION)
        records = _split(records, near, seed)
        if split_leaks(records):  # cannot happen by construction; refuse to write a leaky corpus
            raise InvalidInput(f"patients in two splits: {sorted(split_leaks(records))[:5]}")
        lines = [
            f"{source}: skipped {n} ({reason}, e.g. {examples[(source, reason)]})"
            for source, reasons in skipped.items()
            for reason, n in reasons.items()
        ]
        for line in lines:
            log(line)
        write_manifest(records, tmp / "manifest.jsonl")
        seconds = time.perf_counter() - start
        info = {
            "key": key,
            "seconds": round(seconds, 2),
            "skipped": {s: dict(c) for s, c in skipped.items()},
            "near_duplicates": len(near),
            "near_duplicate_pairs": [[records[i].path, records[j].path, round(r, 4)] for i, j, r in near],
            "fractions": FRACTIONS,
            "log": lines,
        }
        write_text_atomic(tmp / "corpus.json", json.dumps(info, indent=2) + "\n")
    skipped_plain = {s: dict(c) for s, c in skipped.items()}
    return CxrCorpus(folder, records, False, seconds, missing, skipped_plain, len(near))
