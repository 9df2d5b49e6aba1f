"""Paired and multi-contrast folders into the manifest: SynthRAD and BraTS layouts.

Translation learns from voxels that lie on the same spot in two images, so a case is
only useful when its volumes share one grid. Each case is checked for that (shape,
spacing, origin, direction) before anything is written; a case that fails costs one
line naming it and the mismatch, and the other cases go on.

Layouts:

- ``synthrad``: ``<root>/<case>/{mr|cbct}.nii.gz, ct.nii.gz, mask.nii.gz`` (SynthRAD 2023
  task 1 has ``mr``, task 2 ``cbct``); the mask is the body outline.
- ``brats``: ``<root>/<case>/<case>_{t1,t1ce,t2,flair,seg}.nii.gz``, the BraTS 2023
  names ``<case>-{t1n,t1c,t2w,t2f,seg}.nii.gz`` or the BraTS-Toolkit / BrainLes names
  ``<any prefix>_{t1,t1c,t2,fla}_bet.nii.gz`` (the case is the folder's name, whatever
  the files' prefix); contrasts are stored under the older names (t1c, T1 after
  gadolinium in both newer schemes, as t1ce; fla as flair). BraTS volumes are skull
  stripped, so the body mask is "non-zero in any contrast"; ``seg`` (the tumour labels)
  is kept as its own slice. A case needs two contrasts to make a pair; one with fewer
  contrasts than the others is kept, and pairs form where both contrasts exist.

Records carry ``source`` and ``licence`` as given (a public data set's name and terms,
which a model card repeats), else "user data" and "as provided by the user".

Every contrast of a case is cut at the same slices of the same plane, so slices that
share ``extra["pair_id"]`` are aligned pixel for pixel; ``extra["mask"]`` is the body
mask slice (a 0/1 PNG) that evaluation and training crop to. CT is stored over the wide
``TRANSLATION_HU_RANGE`` rather than a display window, so a translated CT can be read
back in HU (:func:`hu_from_unit`); MR is scaled by foreground percentiles as everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from radsynth.data.describe import describe, finding_phrase
from radsynth.data.manifest import Record, load_manifest, safe_name, write_manifest
from radsynth.data.normalise import TISSUE_MODE_AT, apply_window, normalise, tissue_mode_scale
from radsynth.data.problems import IngestResult, Problem, SkipKind, problem_collector, skip_kind
from radsynth.data.qc import check_records
from radsynth.data.slices import extract_slice, informative_slices, native_plane, resize_square
from radsynth.data.splits import split_records
from radsynth.errors import GeometryMismatch, InvalidInput, RadsynthError
from radsynth.io.atomic import atomic_path
from radsynth.io.image import Image

LAYOUTS = ("synthrad", "brats")
# HU stored in [0, 1]: -1024 (air as scanners clip it) .. 2000 (cortical bone, below
# metal). Wider than any display window so a synthetic CT can be mapped back to HU.
TRANSLATION_HU_RANGE = (-1024.0, 2000.0)
# Grids closer than this (mm for spacing and origin, cosine for direction) are one grid:
# NIfTI headers store float32, and resampling tools round differently.
GEOMETRY_TOLERANCE = 1e-3

_SYNTHRAD_SOURCES = ("mr", "cbct")
_BRATS_SUFFIXES = {  # file suffix -> stored contrast name
    "t1": "t1",
    "t1ce": "t1ce",
    "t2": "t2",
    "flair": "flair",
    "t1n": "t1",
    "t1c": "t1ce",
    "t2w": "t2",
    "t2f": "flair",
    "fla": "flair",  # BraTS-Toolkit / BrainLes: <prefix>_{t1,t1c,t2,fla}_bet.nii.gz
}
_BRATS_FILE = re.compile(
    r"^(?P<case>.+?)[_-](?P<suffix>t1ce|t1n|t1c|t1|t2w|t2f|t2|flair|fla|seg)(_bet)?\.nii(\.gz)?$"
)
_DEFAULT_SOURCE, _DEFAULT_LICENCE = "user data", "as provided by the user"
_CONTRAST_WORDS = {"t1": "T1-weighted", "t1ce": "contrast-enhanced T1-weighted", "t2": "T2-weighted"}
_CONTRAST_WORDS |= {"flair": "FLAIR", "mr": None, "ct": None, "cbct": None}


@dataclass
class Case:
    """One case folder: its volumes by contrast, the body mask and the tumour labels."""

    name: str
    folder: Path
    volumes: dict[str, Path]
    mask: Path | None = None
    seg: Path | None = None


class PairedSlice(NamedTuple):
    """One aligned slice pair and the body mask slice (path relative to the manifest)."""

    source: Record
    target: Record
    mask: str | None


# --- finding the cases -------------------------------------------------------------------


def source_terms(source_name: str | None, licence: str | None) -> tuple[str, str]:
    """(source, licence) every ingested record carries: the data set's name and terms
    given, else "user data" / "as provided by the user"; an empty one is one line."""
    for option, given in (("--source", source_name), ("--licence", licence)):
        if given is not None and not given.strip():
            raise InvalidInput(f"{option} must not be empty")
    return (source_name or _DEFAULT_SOURCE).strip(), (licence or _DEFAULT_LICENCE).strip()


def _nifti(folder: Path, stem: str) -> Path | None:
    return next((p for p in (folder / f"{stem}.nii.gz", folder / f"{stem}.nii") if p.is_file()), None)


def _synthrad_case(folder: Path) -> Case:
    volumes = {name: p for name in (*_SYNTHRAD_SOURCES, "ct") if (p := _nifti(folder, name))}
    return Case(folder.name, folder, volumes, mask=_nifti(folder, "mask"))


def _brats_case(folder: Path) -> Case:
    case = Case(folder.name, folder, {})
    for path in sorted(folder.iterdir()):
        match = _BRATS_FILE.match(path.name)
        if not match:
            continue
        suffix = match["suffix"]
        if suffix == "seg":
            case.seg = path
        else:
            case.volumes.setdefault(_BRATS_SUFFIXES[suffix], path)
    return case


def _case_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def detect_layout(root: str | Path) -> str | None:
    """``"synthrad"`` or ``"brats"`` when a case folder under ``root`` looks like one, else None."""
    root = Path(root)
    if not root.is_dir():
        return None
    for folder in _case_folders(root):
        if _nifti(folder, "ct") and any(_nifti(folder, s) for s in _SYNTHRAD_SOURCES):
            return "synthrad"
        if len(_brats_case(folder).volumes) >= 2:
            return "brats"
    return None


def _missing(case: Case, layout: str) -> str | None:
    """What a case lacks to be a pair, or None when it is complete."""
    if layout == "synthrad":
        wanted = [
            "ct.nii.gz" if "ct" not in case.volumes else None,
            "mr.nii.gz (or cbct.nii.gz)" if not set(_SYNTHRAD_SOURCES) & set(case.volumes) else None,
            "mask.nii.gz" if case.mask is None else None,
        ]
        lacking = [w for w in wanted if w]
        return f"missing {', '.join(lacking)}" if lacking else None
    if len(case.volumes) < 2:
        found = ", ".join(case.volumes) or "none"
        return f"fewer than two contrasts (found {found}; want <case>_t1/t1ce/t2/flair.nii.gz or alike)"
    return None


def find_cases(root: Path, layout: str, problem: Callable[[Problem], None]) -> list[Case]:
    """The complete cases under ``root``; each incomplete one is reported and left out."""
    read_case = _synthrad_case if layout == "synthrad" else _brats_case
    cases = []
    for folder in _case_folders(root):
        case = read_case(folder)
        why = _missing(case, layout)
        if why is None:
            cases.append(case)
        else:
            problem(Problem(str(folder), SkipKind.INCOMPLETE_CASE, f"case {case.name}: {why}"))
    return cases


# --- reading and checking one case -------------------------------------------------------


def _read_volume(path: Path, modality: str) -> Image:
    from radsynth.io import read_image
    from radsynth.io.problems import check_finite

    image = read_image(path)
    check_finite(image.array, path)
    if image.spatial_ndim != 3 or image.rgb:
        raise GeometryMismatch(f"expected a grey 3D volume, got shape {image.array.shape}", path)
    units = "HU" if modality == "CT" else image.units
    return replace(image, modality=modality, units=units)


def geometry_difference(a: Image, b: Image, tol: float = GEOMETRY_TOLERANCE) -> str | None:
    """What differs between two grids ("shape (..) vs (..)", "spacing .. vs .. mm"), or None."""
    if a.spatial_shape != b.spatial_shape:
        return f"shape {a.spatial_shape} vs {b.spatial_shape}"
    for name, x, y, unit in (
        ("spacing", a.spacing, b.spacing, " mm"),
        ("origin", a.origin, b.origin, " mm"),
        ("direction", a.direction, b.direction, ""),
    ):
        if not np.allclose(x, y, atol=tol):
            show = (lambda v: np.round(np.ravel(v), 3).tolist()) if name != "direction" else (lambda v: "")
            detail = f" {show(x)} vs {show(y)}{unit}" if name != "direction" else " cosines"
            return f"{name}{detail}"
    return None


def _contrast_modality(contrast: str) -> str:
    return "CT" if contrast in ("ct", "cbct") else "MR"


def _load_case(case: Case) -> tuple[dict[str, Image], np.ndarray, np.ndarray | None]:
    """The case's volumes, its body mask and tumour labels, all checked to share one grid."""
    volumes = {c: _read_volume(p, _contrast_modality(c)) for c, p in case.volumes.items()}
    first_name, first = next(iter(volumes.items()))
    extra_files = {"mask": case.mask, "seg": case.seg}
    others = {c: (case.volumes[c], v) for c, v in volumes.items() if c != first_name}
    others |= {k: (p, _read_volume(p, "OT")) for k, p in extra_files.items() if p is not None}
    for path, image in others.values():
        why = geometry_difference(first, image)
        if why:
            raise GeometryMismatch(
                f"case {case.name}: {path.name} does not share the grid of "
                f"{case.volumes[first_name].name} ({why})",
                path,
            )
    if case.mask is not None:
        body = others["mask"][1].array > 0
    else:  # BraTS: skull stripped, so the brain is where any contrast is non-zero
        body = np.any([v.array != 0 for v in volumes.values()], axis=0)
    if not body.any():
        raise InvalidInput(f"case {case.name}: empty body mask", case.mask or case.folder)
    seg = others["seg"][1].array if case.seg is not None else None
    return volumes, body, seg


# --- slices ---------------------------------------------------------------------------


def hu_from_unit(values: np.ndarray) -> np.ndarray:
    """[0, 1] values of a stored CT slice back to HU (the inverse of the translation range)."""
    low, high = TRANSLATION_HU_RANGE
    return low + np.asarray(values, np.float32) * np.float32(high - low)


def _normalised(volume: Image, body: np.ndarray, layout: str) -> tuple[Image, dict]:
    """``volume`` mapped to [0, 1]: CT over the translation HU range; skull-stripped MR
    (BraTS) by its commonest brain intensity, as ``radsynth translate``'s contrast tasks
    scale their inputs (``radsynth.data.normalise.tissue_mode_scale``); other MR by
    foreground percentiles."""
    if volume.modality == "CT":
        low, high = TRANSLATION_HU_RANGE
        unit = apply_window(volume.array, (low + high) / 2, high - low)
        how = {"rule": "hu_range", "low_hu": low, "high_hu": high}
        return replace(volume, array=unit, units=""), how
    if layout == "brats":
        low, high = tissue_mode_scale(volume.array[body])
        unit = np.clip((volume.array.astype(np.float32) - low) / (high - low), 0, 1)
        how = {"rule": "mr_tissue_mode", "mode_at": TISSUE_MODE_AT, "high": high}
        return replace(volume, array=unit, units=""), how
    norm = normalise(volume, mask=body)
    return norm, norm.metadata["normalisation"]


@dataclass
class _Options:
    layout: str
    size: int
    anatomy: str | None
    source: str = _DEFAULT_SOURCE
    licence: str = _DEFAULT_LICENCE


def _write_label(mask: np.ndarray, like: Image, size: int, path: Path) -> None:
    """A label slice (0/1 mask or tumour labels) resized with nearest neighbours."""
    from radsynth.io import write_png

    labels = replace(like, array=mask.astype(np.float32), metadata={})
    pixels = resize_square(labels, size, background=0.0, nearest=True)
    write_png(pixels.with_array(pixels.array.round().astype(np.uint8)), path, bits=8)


def _slice_facts(
    case: Case, cut: Image, body: np.ndarray, seg: np.ndarray | None, opts: _Options, folder: Path
) -> tuple[dict, dict, str | None]:
    """The extra fields shared by every contrast of one slice (mask and seg slices written),
    the labels and the finding phrase (BraTS: tumour in the slice or not)."""
    index = cut.metadata["slice"]["index"]
    name = f"{cut.metadata['slice']['plane']}_{index:03d}"
    extra = {
        "layout": opts.layout,
        "pair_id": f"{case.name}/{name}",
        "mask": f"masks/{safe_name(case.name)}/{name}.png",
    }
    extra |= {"slice_index": index, "position_mm": round(cut.metadata["slice"]["position_mm"], 3)}
    _write_label(body, cut, opts.size, folder / extra["mask"])
    if seg is None:
        return extra, {}, None
    extra["seg"] = f"seg/{safe_name(case.name)}/{name}.png"
    _write_label(seg, cut, opts.size, folder / extra["seg"])
    present = bool(seg.any())
    phrase = finding_phrase("present" if present else "none", opts.anatomy or "", word="tumour")
    return extra, {"finding": "tumour" if present else "none"}, phrase


def _case_records(case: Case, opts: _Options, folder: Path) -> list[Record]:
    """Every contrast of ``case`` cut at the same informative slices, with mask slices."""
    from radsynth.io import write_png

    volumes, body, seg = _load_case(case)
    reference = next(iter(volumes.values()))
    plane = native_plane(reference)
    indices, _ = informative_slices(reference, plane, body)
    normalised = {c: _normalised(v, body, opts.layout) for c, v in volumes.items()}
    records = []
    for index in indices:
        name = f"{plane}_{index:03d}"
        cut, body_slice = extract_slice(reference, plane, index, mask=body.astype(np.uint8))
        seg_slice = None if seg is None else extract_slice(reference, plane, index, mask=seg)[1]
        extra, labels, finding = _slice_facts(case, cut, body_slice, seg_slice, opts, folder)
        for contrast, (norm, how) in normalised.items():
            pixels = resize_square(extract_slice(norm, plane, index)[0], opts.size, background=0.0)
            modality = volumes[contrast].modality
            text = describe(plane, modality, opts.anatomy, _CONTRAST_WORDS.get(contrast), finding=finding)
            rel = f"images/{safe_name(case.name)}/{contrast}/{name}.png"
            write_png(pixels, folder / rel, bits=16, value_range=(0.0, 1.0), text={"Description": text})
            records.append(
                Record(
                    path=rel,
                    text=text,
                    modality=modality,
                    subject=case.name,
                    split="train",
                    source=opts.source,
                    licence=opts.licence,
                    anatomy=opts.anatomy,
                    plane=plane,
                    contrast=contrast,
                    labels=labels,
                    spacing=tuple(round(s, 4) for s in pixels.spacing),
                    shape=tuple(pixels.array.shape),
                    extra={**extra, "source_file": str(case.volumes[contrast]), "normalisation": how},
                )
            )
    return records


def ingest_paired(
    source: str | Path,
    out: str | Path,
    layout: str | None = None,
    size: int = 64,
    anatomy: str | None = None,
    seed: int = 0,
    on_problem: Callable[[Problem], None] | None = None,
    on_progress: Callable[[int, int, str], None] | None = None,
    source_name: str | None = None,
    licence: str | None = None,
) -> IngestResult:
    """Ingest a SynthRAD- or BraTS-layout folder ``source`` into a corpus folder ``out``.

    ``layout`` is detected from the case folders when None. ``size`` is the square slice
    side in pixels; ``anatomy`` goes into every record and text (BraTS defaults to
    "brain"). ``source_name`` and ``licence`` (a public data set's name and terms) go into
    every record, else "user data" and "as provided by the user". Splits are by case, so
    every contrast of a case lands in one split. A case with a missing file, a single
    contrast, NaN voxels or volumes on different grids is skipped with one line
    (``on_problem``); ``InvalidInput`` when no case is usable.
    """
    source, out = Path(source), Path(out)
    if not source.is_dir():
        raise InvalidInput("a paired layout needs a folder of case folders", source)
    layout = layout or detect_layout(source)
    if layout not in LAYOUTS:
        known = ", ".join(LAYOUTS)
        raise InvalidInput(f"unknown or undetectable layout {layout!r} (known: {known})", source)
    if size < 8:
        raise InvalidInput(f"--size must be at least 8 pixels, got {size}")
    source_text, licence_text = source_terms(source_name, licence)
    problems, problem = problem_collector(on_problem)

    cases = find_cases(source, layout, problem)
    if not cases and not problems:
        raise InvalidInput(f"no case folders found for the {layout} layout", source)
    opts = _Options(
        layout,
        size,
        anatomy or ("brain" if layout == "brats" else None),
        source_text,
        licence_text,
    )
    records: list[Record] = []
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        for done, case in enumerate(cases, start=1):
            try:
                records += _case_records(case, opts, tmp)
            except RadsynthError as err:
                detail = (
                    err.problem if err.problem.startswith("case ") else f"case {case.name}: {err.problem}"
                )
                problem(Problem(str(err.path or case.folder), skip_kind(err), detail))
            if on_progress is not None:
                on_progress(done, len(cases), case.name)
        if not records:
            raise InvalidInput(f"nothing usable: {len(problems)} case(s) skipped", source)
        records = split_records(records, seed=seed)
        write_manifest(records, tmp / "manifest.jsonl")
    result = IngestResult(out, records, problems, inputs=len(_case_folders(source)))
    result.qc = check_records(records, out, manifest=str(result.manifest))
    return result


# --- pairs for training and evaluation ---------------------------------------------------


def _matches(record: Record, name: str) -> bool:
    """``name`` is a contrast ("t1", "mr", "ct") or a modality ("MR", "CT")."""
    key = name.strip().lower()
    return record.contrast == _BRATS_SUFFIXES.get(key, key) or record.modality == key.upper()


def aligned_pairs(
    records: Iterable[Record] | str | Path,
    source: str,
    target: str,
    splits: Sequence[str] | None = None,
) -> list[PairedSlice]:
    """Aligned ``(source_record, target_record, mask)`` slices of a paired manifest.

    ``records`` is a manifest path or its records; ``source`` / ``target`` name a contrast
    ("t1", "t2", "mr", "cbct", BraTS 2023 names too) or a modality ("MR", "CT").
    ``splits`` keeps only those splits. ``mask`` is the body mask PNG, relative to the
    manifest like the records' paths. ``InvalidInput`` when a name matches nothing, or
    several contrasts of one slice (say which one).
    """
    if isinstance(records, (str, Path)):
        records = load_manifest(records)
    by_pair: dict[str, list[Record]] = {}
    for r in records:
        if "pair_id" in r.extra and (splits is None or r.split in splits):
            by_pair.setdefault(r.extra["pair_id"], []).append(r)
    pairs = []
    for pair_id, group in sorted(by_pair.items()):
        src, tgt = ([r for r in group if _matches(r, name)] for name in (source, target))
        for name, found in ((source, src), (target, tgt)):
            if len(found) > 1:
                names = ", ".join(sorted(str(r.contrast) for r in found))
                raise InvalidInput(f"{name!r} matches contrasts {names} of {pair_id}; name one")
        if src and tgt and src[0] is not tgt[0]:
            pairs.append(PairedSlice(src[0], tgt[0], src[0].extra.get("mask")))
    if not pairs:
        raise InvalidInput(f"no aligned {source} -> {target} slices in the manifest")
    return pairs


def load_pair(pair: PairedSlice, manifest: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The pair's pixels in [0, 1] (float32) and its body mask (bool), read from disk."""
    from radsynth.io import read_image

    def unit(record: Record) -> np.ndarray:
        array = read_image(record.resolve(manifest)).array.astype(np.float32)
        return array / np.float32(65535.0)

    mask = None
    if pair.mask is not None:
        mask = read_image(Path(manifest).parent / pair.mask).array > 0
    return unit(pair.source), unit(pair.target), mask
