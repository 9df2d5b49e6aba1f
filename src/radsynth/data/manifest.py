"""The manifest: one JSON line per image, the single format every data path produces.

A record says where the image is (``path``, relative to the manifest's folder so a corpus
can be moved or shared whole), what it shows (``text`` and structured ``labels``), whose
it is (``subject``, the unit of splitting) and where it came from (``source``,
``licence``). The demo builder, ``radsynth data ingest`` and the training tasks all speak
this one format.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from radsynth.errors import InvalidInput
from radsynth.io.atomic import write_text_atomic

SPLITS = ("train", "val", "test")
REQUIRED = ("path", "text", "modality", "subject", "split", "source", "licence")
DEMO_PREFIX = "demo:"


@dataclass(frozen=True)
class Record:
    """One image of a corpus.

    ``path`` is relative to the manifest's folder. ``spacing`` is the pixel spacing in mm in
    (x, y) order and ``shape`` the pixel shape in numpy (rows, columns) order. ``labels``
    holds the structured facts behind ``text`` (e.g. ``{"finding": "tumour", "side":
    "right", "size_mm": 23.1}``); ``extra`` holds anything else worth keeping (slice
    index, physical position, ...).
    """

    path: str
    text: str
    modality: str
    subject: str
    split: str
    source: str
    licence: str
    anatomy: str | None = None
    plane: str | None = None
    contrast: str | None = None
    window: str | None = None
    labels: dict[str, Any] = field(default_factory=dict)
    spacing: tuple[float, ...] | None = None
    shape: tuple[int, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict; optional fields left empty are dropped to keep lines short."""
        out = asdict(self)
        for key in ("spacing", "shape"):
            if out[key] is not None:
                out[key] = list(out[key])
        return {k: v for k, v in out.items() if k in REQUIRED or v not in (None, {}, [])}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        """Build a record from a parsed JSON object; ``ValueError`` names what is wrong."""
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        missing = [k for k in REQUIRED if k not in data]
        if missing:
            raise ValueError(f"missing required field(s) {', '.join(missing)}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown field(s) {', '.join(unknown)}")
        values = dict(data)
        for key in ("spacing", "shape"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        for key in ("labels", "extra"):
            if values.get(key) is None:
                values[key] = {}
            elif not isinstance(values[key], dict):
                raise ValueError(f"field {key} must be an object")
        return cls(**values)

    def resolve(self, manifest_path: str | Path) -> Path:
        """Absolute path of the image, given the manifest file it belongs to."""
        return Path(manifest_path).parent / self.path


def safe_name(name: str) -> str:
    """A file-name-safe version of ``name`` (subjects and series names become folders)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "item"


def dumps_manifest(records: Iterable[Record]) -> str:
    """The JSONL text for ``records`` (one compact object per line, UTF-8 safe)."""
    lines = [json.dumps(r.to_dict(), ensure_ascii=False, separators=(",", ":")) for r in records]
    return "".join(line + "\n" for line in lines)


def write_manifest(records: Iterable[Record], path: str | Path) -> Path:
    """Write ``records`` to ``path`` atomically: readers never see a half-written manifest."""
    path = Path(path)
    write_text_atomic(path, dumps_manifest(records))
    return path


def load_manifest(path: str | Path) -> list[Record]:
    """Read a JSONL manifest; bad JSON or a bad record raises ``InvalidInput`` naming the line.

    Blank lines are allowed (editors add them); anything else must be a record.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput("manifest not found", path) from None
    except UnicodeDecodeError as err:
        raise InvalidInput(f"manifest is not UTF-8 text ({err.reason} at byte {err.start})", path) from None
    except OSError as err:
        raise InvalidInput(f"cannot read manifest ({err.strerror})", path) from None
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(Record.from_dict(json.loads(line)))
        except json.JSONDecodeError as err:
            raise InvalidInput(f"line {number}: bad JSON ({err.msg} at column {err.colno})", path) from None
        except (TypeError, ValueError) as err:
            raise InvalidInput(f"line {number}: {err}", path) from None
    return records


def summarise(records: Iterable[Record]) -> dict[str, dict[str, int]]:
    """Counts per modality, anatomy, finding and split (what a corpus table shows)."""
    records = list(records)
    keys = {
        "modality": lambda r: r.modality,
        "anatomy": lambda r: r.anatomy or "unknown",
        "finding": lambda r: str(r.labels.get("finding", "unknown")),
        "split": lambda r: r.split,
    }
    return {name: dict(sorted(Counter(key(r) for r in records).items())) for name, key in keys.items()}


def resolve_manifest(manifest: str) -> Path:
    """A manifest path, or ``demo:<size>`` -> the demo corpus (built on first use, then cached)."""
    if manifest.startswith(DEMO_PREFIX):
        from radsynth.data.demo import build_demo

        size = manifest[len(DEMO_PREFIX) :]
        if not size.isdigit():
            raise InvalidInput(f"data.manifest {manifest!r}: expected demo:<size>, e.g. demo:64")
        return build_demo(size=int(size)).folder / "manifest.jsonl"
    path = Path(manifest)
    if not path.is_file():
        raise InvalidInput("data.manifest: no such manifest file", path)
    return path


def read_unit_image(path: Path) -> np.ndarray:
    """A grey PNG as float32 (H, W) in [0, 1] (its ``radsynth:value_range`` applied)."""
    from radsynth.io.raster import read_raster

    image = read_raster(path)
    if image.rgb or image.array.ndim != 2:
        raise InvalidInput(f"training images must be 2D grey, got shape {image.array.shape}", path)
    codes = image.array
    top = float(np.iinfo(codes.dtype).max) if codes.dtype.kind in "ui" else 1.0
    unit = codes.astype(np.float32) / top
    value_range = image.metadata.get("value_range")
    if value_range is not None:
        lo, hi = value_range
        unit = lo + unit * (hi - lo)
    return np.clip(unit, 0.0, 1.0).astype(np.float32)


def real_png_text(description: str, source: str, licence: str, subject: str, builder: str) -> dict[str, str]:
    """The PNG text chunks of a real image a corpus builder writes: what it shows, where it
    came from under which licence, and that it is real (so no one takes it for an output)."""
    from radsynth import __version__

    return {
        "Description": description,
        "Source": source,
        "Licence": licence,
        "Subject": subject,
        "Software": f"radsynth {__version__} {builder} (real image, not synthetic)",
    }
