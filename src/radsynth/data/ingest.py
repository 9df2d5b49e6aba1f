"""Users' images into the manifest format: DICOM series, NIfTI/NRRD/MHA volumes, PNG/JPEG.

A folder is walked once: DICOM files are grouped by series, volumes are read whole, and
2D images take their text (and optionally subject) from a CSV. Volumes become slices in
their acquisition plane, normalised per modality exactly as the demo corpus is. A bad
input (a truncated file, a series with a missing slice, NaN voxels, a CSV without the
column asked for) costs one line naming the file and the problem; the rest goes on and
the result counts what was skipped and why. Nothing readable at all is an error.
"""

from __future__ import annotations

import contextlib
import csv
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from radsynth.data.describe import describe
from radsynth.data.findings import level_fraction, level_words, sagittal_words
from radsynth.data.manifest import Record, safe_name, write_manifest
from radsynth.data.normalise import XRAY_MODALITIES, foreground_mask, grey, normalise
from radsynth.data.paired import detect_layout, ingest_paired, source_terms
from radsynth.data.problems import IngestResult, Problem, SkipKind, problem_collector, skip_kind
from radsynth.data.qc import check_records
from radsynth.data.slices import body_extent, extract_slice, informative_slices, native_plane, resize_square
from radsynth.data.splits import split_records
from radsynth.errors import CsvUnusable, InvalidInput, NotAnImage, NotInCsv, RadsynthError
from radsynth.io.atomic import atomic_path
from radsynth.io.image import Image

VOLUME_SUFFIXES = (".nii", ".nii.gz", ".nrrd", ".nhdr", ".mha", ".mhd")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IGNORED_SUFFIXES = (".csv", ".tsv", ".txt", ".md", ".json", ".raw", ".zraw", ".sha256")
IGNORED_NAMES = ("SHA256SUMS", "DICOMDIR", "README", "LICENSE")
# DICOM objects with pixels that are not a picture of anatomy (PS3.3 C.7.3.1.1.1)
NOT_PICTURES = {"RTDOSE": "a radiotherapy dose grid", "SEG": "a segmentation"}
ANATOMY_FROM_BODY_PART = {
    "CHEST": "chest",
    "THORAX": "chest",
    "HEAD": "head",
    "BRAIN": "brain",
    "BREAST": "breast",
}


@dataclass
class _Item:
    """One input unit: a DICOM series (several files) or one volume / image file."""

    kind: str  # "dicom", "volume", "image"
    name: str
    paths: list[Path]


@dataclass(frozen=True)
class _Row:
    text: str
    subject: str | None


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _stem(path: Path) -> str:
    name = path.name
    return name[: -len(_suffix(path))] if _suffix(path) else name


# --- the CSV of texts ------------------------------------------------------------------


def read_text_csv(
    path: Path, root: Path, text_column: str, path_column: str, subject_column: str | None
) -> dict[Path, _Row]:
    """Resolved image path -> (text, subject) from a CSV; ``InvalidInput`` if unusable.

    Paths in the CSV may be relative to the ingested folder or to the CSV's own folder.
    """
    try:
        content = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InvalidInput("CSV not found", path) from None
    except UnicodeDecodeError as err:
        raise InvalidInput(
            f"not UTF-8 text (byte 0x{err.object[err.start]:02x} at position {err.start})", path
        ) from None
    try:
        rows = list(csv.DictReader(content.splitlines()))
    except csv.Error as err:
        raise InvalidInput(f"malformed CSV ({err})", path) from None
    columns = list(rows[0].keys()) if rows else []
    for wanted in (text_column, path_column, subject_column):
        if wanted is not None and wanted not in columns:
            raise InvalidInput(
                f"no column {wanted!r} (columns: {', '.join(map(str, columns)) or 'none'})", path
            )
    table = {}
    for row in rows:
        rel = Path((row.get(path_column) or "").strip())
        target = next((p for p in (root / rel, path.parent / rel) if p.exists()), root / rel)
        subject = (row.get(subject_column) or "").strip() if subject_column else None
        table[target.resolve()] = _Row((row.get(text_column) or "").strip(), subject or None)
    return table


# --- finding the inputs ----------------------------------------------------------------


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    """Silence a logger's warnings for a moment (its news is reported here, per file)."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _plan(source: Path, csv_path: Path | None, problems: list[Problem]) -> list[_Item]:
    """The inputs under ``source`` (a folder or one file), DICOM grouped by series."""
    from radsynth.io import find_dicom_series

    if source.is_file():
        suffix = _suffix(source)
        kind = "volume" if suffix in VOLUME_SUFFIXES else "image" if suffix in IMAGE_SUFFIXES else "dicom"
        return [_Item(kind, _stem(source), [source])]
    files = sorted(p for p in source.rglob("*") if p.is_file() and not p.name.startswith("."))
    items, maybe_dicom = [], []
    for path in files:
        suffix = _suffix(path)
        if suffix in VOLUME_SUFFIXES:
            items.append(_Item("volume", _stem(path), [path]))
        elif suffix in IMAGE_SUFFIXES:
            items.append(_Item("image", _stem(path), [path]))
        elif suffix in IGNORED_SUFFIXES or path.name.upper() in IGNORED_NAMES or path == csv_path:
            continue
        else:
            maybe_dicom.append(path)
    if maybe_dicom:
        with _quiet("radsynth.io.dicom_series"):  # its skip summary would name files we ignore on purpose
            index = find_dicom_series(source)
        wanted = {p.resolve() for p in maybe_dicom}
        for uid, series in index.items():
            series = [p for p in series if p.resolve() in wanted]
            if series:
                items.append(_Item("dicom", uid, series))
        for path, why in index.skipped.items():
            if Path(path).resolve() in wanted:
                kind = SkipKind.NO_PIXELS if path in index.not_images else SkipKind.NOT_DICOM
                problems.append(Problem(str(path), kind, why))
    return items


# --- reading one input -----------------------------------------------------------------


def _read(item: _Item) -> Image:
    from radsynth.io import read_dicom_series, read_image
    from radsynth.io.problems import check_finite

    # A lone DICOM file is read as what it is (a 2D image, a multi-frame volume).
    multi_file = item.kind == "dicom" and len(item.paths) > 1
    image = read_dicom_series(item.paths) if multi_file else read_image(item.paths[0])
    check_finite(image.array, item.paths[0])
    return image


def _as_2d(image: Image) -> Image | None:
    """A one-slice volume (a single DICOM file, a projection X-ray) as a 2D image."""
    if image.spatial_ndim == 3 and image.spatial_shape[0] == 1:
        return Image(
            image.array[0],
            spacing=image.spacing[:2],
            modality=image.modality,
            units=image.units,
            rgb=image.rgb,
            metadata=image.metadata,
        )
    return image if image.spatial_ndim == 2 else None


def _scale_display(image: Image) -> Image:
    """PNG/JPEG pixels are already windowed for display: scale by the type's range only."""
    pixels = grey(image).astype(np.float32)
    top = float(np.iinfo(image.array.dtype).max) if np.issubdtype(image.array.dtype, np.integer) else 1.0
    return replace(image, array=np.clip(pixels / top, 0.0, 1.0), rgb=False, units="")


@dataclass
class _Context:
    out: Path
    size: int
    window: str | None
    modality: str | None
    texts: dict[Path, _Row] | None
    csv_problem: str | None
    source: str = "user data"
    licence: str = "as provided by the user"


def _subject(item: _Item, image: Image, row: _Row | None) -> str:
    if row is not None and row.subject:
        return row.subject
    patient = str(image.metadata.get("PatientID", "") or "").strip()
    if item.kind == "dicom":
        return patient or item.paths[0].parent.name
    return _stem(item.paths[0])


def _anatomy(image: Image) -> str | None:
    return ANATOMY_FROM_BODY_PART.get(str(image.metadata.get("BodyPartExamined", "")).upper())


def _base_record(
    item: _Item, image: Image, subject: str, rel: str, text: str, pixels: Image, ctx: _Context
) -> Record:
    extra = {"source_file": str(item.paths[0] if len(item.paths) == 1 else item.paths[0].parent)}
    for key in ("SeriesDescription", "SeriesInstanceUID", "StudyInstanceUID", "ViewPosition"):
        if image.metadata.get(key):
            extra[key] = image.metadata[key]
    return Record(
        path=rel,
        text=text,
        modality=image.modality,
        subject=subject,
        split="train",
        source=ctx.source,
        licence=ctx.licence,
        anatomy=_anatomy(image),
        labels={},
        spacing=tuple(round(s, 4) for s in pixels.spacing),
        shape=tuple(pixels.array.shape),
        extra=extra,
    )


def _image_records(item: _Item, image: Image, ctx: _Context, folder: Path) -> list[Record]:
    """One 2D image -> one record; PNG/JPEG text from the CSV when one is given."""
    from radsynth.io import write_png

    row = ctx.texts.get(item.paths[0].resolve()) if ctx.texts is not None else None
    if item.kind == "image" and ctx.csv_problem is not None:
        raise CsvUnusable(f"no text: the CSV is unusable ({ctx.csv_problem})", item.paths[0])
    if item.kind == "image" and ctx.texts is not None and row is None:
        raise NotInCsv("not listed in the CSV", item.paths[0])
    modality = ctx.modality or image.modality
    image = replace(image, modality=modality)
    if item.kind == "image":
        norm = _scale_display(image)
    else:
        norm = normalise(image, window=ctx.window if modality == "CT" else None)
    pixels = resize_square(norm, ctx.size, background=float(norm.array.min()))
    subject = _subject(item, image, row)
    text = row.text if row is not None else describe(_plane_of(image), modality, _anatomy(image))
    rel = f"images/{safe_name(subject)}/{safe_name(item.name)}.png"
    write_png(pixels, folder / rel, bits=16, value_range=(0.0, 1.0), text={"Description": text})
    record = _base_record(item, image, subject, rel, text, pixels, ctx)
    plane = None if modality in XRAY_MODALITIES else _plane_of(image)
    return [replace(record, plane=plane, window=ctx.window if modality == "CT" else None)]


def _plane_of(image: Image) -> str | None:
    """A single DICOM slice's plane from Image Orientation (Patient); None when unknown."""
    cosines = image.metadata.get("ImageOrientationPatient")
    if not isinstance(cosines, list) or len(cosines) != 6:
        return None
    normal = np.abs(np.cross(cosines[:3], cosines[3:]))
    return ("sagittal", "coronal", "axial")[int(np.argmax(normal))]


def _volume_records(item: _Item, image: Image, ctx: _Context, folder: Path) -> list[Record]:
    """A volume -> its informative slices in the acquisition plane."""
    from radsynth.io import write_png

    if ctx.modality:
        image = replace(image, modality=ctx.modality)
    plane = native_plane(image)
    body = foreground_mask(grey(image), image.modality)
    window = (ctx.window or "soft_tissue") if image.modality == "CT" else None
    norm = normalise(image, window=window, mask=None if image.modality == "CT" else body)
    air = float(norm.array.min())
    subject = _subject(item, image, None)
    indices, _ = informative_slices(image, plane, body)
    extent = body_extent(image, plane, body)
    records = []
    for index in indices:
        pixels = resize_square(extract_slice(norm, plane, index)[0], ctx.size, background=air)
        position = pixels.metadata["slice"]["position_mm"]
        level = _level(plane, position, extent, _anatomy(image) or "scan")
        text = describe(plane, image.modality, _anatomy(image), None, window, level)
        rel = f"images/{safe_name(subject)}/{safe_name(item.name)}/{plane}_{index:03d}.png"
        write_png(pixels, folder / rel, bits=16, value_range=(0.0, 1.0), text={"Description": text})
        record = _base_record(item, image, subject, rel, text, pixels, ctx)
        extra = {**record.extra, "slice_index": index, "position_mm": round(position, 3), "level": level}
        records.append(replace(record, plane=plane, window=window, extra=extra))
    return records


def _level(plane: str, position: float, extent: tuple[float, float] | None, anatomy: str) -> str | None:
    if extent is None:
        return None
    first, last = extent
    if plane == "sagittal":
        return sagittal_words(position - (first + last) / 2, (last - first) / 2)
    return level_words(plane, level_fraction(position, first, last), anatomy)


def _records_for(item: _Item, ctx: _Context, folder: Path) -> list[Record]:
    image = _read(item)
    if image.modality in NOT_PICTURES and not ctx.modality:
        raise NotAnImage(
            f"modality {image.modality}: {NOT_PICTURES[image.modality]}, not an image", item.paths[0]
        )
    flat = _as_2d(image)
    if flat is not None:
        return _image_records(item, flat, ctx, folder)
    if image.rgb:  # colour frames (ultrasound cine, secondary captures): grey, as 2D images are
        image = replace(image, array=grey(image), rgb=False)
    return _volume_records(item, image, ctx, folder)


def _problem(item: _Item, err: RadsynthError) -> Problem:
    """One skipped input: the file, or for a DICOM series its folder, with the series and
    its file count in the detail (several series may share a folder)."""
    if len(item.paths) == 1:
        return Problem(str(err.path or item.paths[0]), skip_kind(err), str(err.problem))
    detail = f"series {item.name} ({len(item.paths)} files): {err.problem}"
    return Problem(str(err.path or item.paths[0].parent), skip_kind(err), detail)


def ingest(
    source: str | Path,
    out: str | Path,
    csv_path: str | Path | None = None,
    text_column: str = "text",
    path_column: str = "path",
    subject_column: str | None = None,
    size: int = 64,
    window: str | None = None,
    modality: str | None = None,
    seed: int = 0,
    on_problem: Callable[[Problem], None] | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
    layout: str | None = None,
    source_name: str | None = None,
    licence: str | None = None,
) -> IngestResult:
    """Ingest ``source`` (a folder or one file) into a corpus folder ``out``.

    ``csv_path`` gives texts for PNG/JPEG (columns ``path_column``, ``text_column`` and
    optionally ``subject_column``). ``size`` is the square slice side in pixels;
    ``window`` the CT window (default soft tissue); ``modality`` overrides what files say
    (e.g. "DX" for chest X-ray PNGs). Splits are by subject (see ``radsynth.data.splits``).
    ``on_problem`` hears each skipped input as it happens, ``on_progress(done, total, name)``
    each finished one. Raises ``InvalidInput`` when nothing readable was found.

    ``layout`` ("synthrad", "brats") reads case folders of aligned volumes instead (see
    ``radsynth.data.paired``); "auto" (or None) uses it when the folder looks like one,
    "plain" never does. ``source_name`` and ``licence`` name the data set and its terms in
    every record (and so in a model card trained on it): default "user data", "as
    provided by the user".
    """
    source, out = Path(source), Path(out)
    if not source.exists():
        raise InvalidInput("not found", source)
    if layout in (None, "auto"):
        layout = detect_layout(source)
    if layout not in (None, "plain"):
        return ingest_paired(
            source,
            out,
            layout,
            size,
            seed=seed,
            on_problem=on_problem,
            on_progress=on_progress,
            source_name=source_name,
            licence=licence,
        )
    named = source_terms(source_name, licence)
    if size < 8:
        raise InvalidInput(f"--size must be at least 8 pixels, got {size}")
    problems, problem = problem_collector(on_problem)

    texts, csv_problem = None, None
    if csv_path is not None:
        try:
            texts = read_text_csv(
                Path(csv_path),
                source if source.is_dir() else source.parent,
                text_column,
                path_column,
                subject_column,
            )
        except InvalidInput as err:
            csv_problem = err.problem
            problem(Problem(str(csv_path), SkipKind.CSV_UNUSABLE, err.problem))
    found: list[Problem] = []
    items = _plan(source, Path(csv_path) if csv_path else None, found)
    for p in found:
        problem(p)
    if not items and not found:
        raise InvalidInput("no image files found", source)
    ctx = _Context(out, size, window, modality.upper() if modality else None, texts, csv_problem, *named)
    records: list[Record] = []
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        for done, item in enumerate(items, start=1):
            try:
                records += _records_for(item, ctx, tmp)
            except RadsynthError as err:
                problem(_problem(item, err))
            if on_progress is not None:
                on_progress(done, len(items), item.name)
        if not records:
            raise InvalidInput(f"nothing readable: {len(problems)} input(s) skipped", source)
        records = split_records(records, seed=seed)
        write_manifest(records, tmp / "manifest.jsonl")
    result = IngestResult(out, records, problems, inputs=len(items) + len(found))
    result.qc = check_records(records, out, manifest=str(result.manifest))
    return result
