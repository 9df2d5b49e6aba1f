"""Find DICOM series in a folder tree and stack one series into a 3D ``Image``.

Folders come as they come, so ``find_dicom_series`` groups files into what can be read
as one unit: the slices of a series that form a volume; each projection image (CR, DX,
MG, XA, RF, US) and each file without Image Position (secondary captures, OT) alone,
as a 2D image; each multi-frame file alone; a file without SeriesInstanceUID alone. A
series whose slices repeat a position (several echoes, phases or acquisitions) is split
by Echo Number, Temporal Position and Acquisition Number before ordering; one whose
positions are all distinct stays one volume.

Slices are sorted by their position projected on the slice normal (never by file name or
Instance Number), the z spacing comes from those positions, and a series that is not one
evenly spaced volume fails loudly: a missing slice, mixed orientations, mixed shapes or
mixed series each raise ``GeometryMismatch`` naming the folder.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from radsynth.errors import (
    GeometryMismatch,
    InvalidInput,
    MixedOrientations,
    MixedShapes,
    RadsynthError,
    UnreadableImage,
)
from radsynth.io.dicom import image_from_dataset
from radsynth.io.dicom_file import PIXEL_KEYWORDS, has_pixels, read_dataset
from radsynth.io.dicom_frames import number_of_frames
from radsynth.io.dicom_geometry import (
    direction_from_orientation,
    floats,
    pixel_spacing,
    same_orientation,
    stack_slices,
)
from radsynth.io.dicom_pixels import decode_pixels
from radsynth.io.dicom_tags import dicom_metadata
from radsynth.io.image import Image
from radsynth.io.problems import MAX_VOXELS, one_line

if TYPE_CHECKING:
    from pydicom import Dataset

log = logging.getLogger(__name__)
# Projection images (PS3.3 C.7.3.1 Modality): without Image Position, like any file, each
# is one 2D picture; with positions they stack (radsynth writes volumes so) unless the
# positions repeat (several views), when each is again a picture of its own.
PROJECTION_MODALITIES = ("CR", "DX", "MG", "XA", "RF", "US", "IO", "PX", "XC", "ES", "GM", "SM")
# What tells the volumes of one series apart (PS3.3 C.7.6.1.1, C.8.3.1, C.7.6.1)
SPLIT_BY = ("EchoNumbers", "TemporalPositionIdentifier", "AcquisitionNumber")
_HEADER = ("SeriesInstanceUID", "Modality", "NumberOfFrames", "ImagePositionPatient")


class DicomSeriesIndex(dict[str, list[Path]]):
    """Unit name -> sorted file paths; ``skipped`` maps each other file to why.

    A unit is a series (named by its SeriesInstanceUID; ``<uid> echo 2`` and the like for
    a split series), or one file (``<uid>/<file name>``). ``not_images`` are the skipped
    files that are DICOM, but without pixels (DICOMDIR, reports, RT plans)."""

    def __init__(self) -> None:
        super().__init__()
        self.skipped: dict[Path, str] = {}
        self.not_images: set[Path] = set()


def find_dicom_series(folder: str | Path) -> DicomSeriesIndex:
    """Group the DICOM image files under ``folder`` (recursively) by SeriesInstanceUID.

    Files that are not DICOM, or DICOM without pixel data (DICOMDIR, reports, RT plans),
    are left out and listed in the result's ``skipped`` (path -> reason), and logged.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInput("not a folder", folder)
    index = DicomSeriesIndex()
    headers: dict[Path, Dataset] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        ds, reason = _header(path)
        if ds is None or not has_pixels(ds):
            index.skipped[path] = reason or "no Pixel Data: not an image"
            if ds is not None:
                index.not_images.add(path)
            continue
        uid = str(ds.get("SeriesInstanceUID") or "")
        headers[path] = ds
        if _alone(ds) or not uid:
            index[f"{uid or 'no SeriesInstanceUID'}/{path.name}"] = [path]
        else:
            index.setdefault(uid, []).append(path)
    for uid in [uid for uid, files in index.items() if len(files) > 1]:
        parts = _split_volumes([headers[f] for f in index[uid]], index[uid])
        if len(parts) > 1:
            del index[uid]
            index.update({f"{uid}{name}": files for name, files in parts.items()})
    if index.skipped:
        log.warning(
            "%s: skipped %d files that are not DICOM images (e.g. %s: %s)",
            folder,
            len(index.skipped),
            *next(iter(index.skipped.items())),
        )
    return index


def _header(path: Path) -> tuple[Dataset | None, str]:
    """(the grouping attributes, "") of a DICOM file, else (None, why it is not DICOM)."""
    try:
        # Large values (the pixels) are deferred: only the header is read here.
        ds = read_dataset(path, defer_size=1024, specific_tags=[*_HEADER, *SPLIT_BY, *PIXEL_KEYWORDS])
    except UnreadableImage as err:
        return None, err.problem
    return ds, ""


def _alone(ds: Dataset) -> bool:
    """A file that is a unit by itself: a file without Image Position (projection images,
    secondary captures), a multi-frame file (or one whose frame count is malformed:
    read alone, its problem is its own)."""
    if _position(ds) is None:
        return True
    try:
        return number_of_frames(ds) > 1
    except (TypeError, ValueError):
        return True


def _position(ds: Dataset) -> tuple[float, ...] | None:
    """Image Position (Patient) to 0.01 mm, None when absent or malformed."""
    try:
        position = floats(ds.get("ImagePositionPatient"))
    except (TypeError, ValueError):
        return None
    return tuple(np.round(position, 2)) if position is not None and position.shape == (3,) else None


def _split_volumes(headers: list[Dataset], files: list[Path]) -> dict[str, list[Path]]:
    """A series whose slices repeat a position, split by echo, temporal position and
    acquisition ({" echo 1": [...], " echo 2": [...]}), or into single files for
    projection images ({"/<file name>": [file], ...}); {"": files} when nothing repeats
    or nothing tells the slices apart (the reader then reports what is wrong)."""
    positions = [_position(ds) for ds in headers]
    if len(set(positions)) == len(positions):
        return {"": files}
    if str(headers[0].get("Modality", "") or "").upper() in PROJECTION_MODALITIES:
        return {f"/{path.name}": [path] for path in files}
    keys = [tuple(str(ds.get(k, "") or "") for k in SPLIT_BY) for ds in headers]
    varying = [i for i in range(len(SPLIT_BY)) if len({key[i] for key in keys}) > 1]
    if not varying:
        return {"": files}
    words = ("echo", "phase", "acquisition")
    parts: dict[str, list[Path]] = {}
    for key, path in zip(keys, files, strict=True):
        name = "".join(f" {words[i]} {key[i] or '?'}" for i in varying)
        parts.setdefault(name, []).append(path)
    return parts


def read_dicom_series(source: str | Path | Sequence[str | Path]) -> Image:
    """One series (a folder holding exactly one, or a list of files) as a 3D ``Image``.

    Values are rescaled per slice (CT in HU as float32). Raises ``GeometryMismatch`` for a
    missing slice (a gap over 1.5x the typical spacing), mixed orientations, shapes, pixel
    spacings or series, and ``UnreadableImage`` when there is no image file at all.
    """
    files, where = _series_files(source)
    datasets = [read_dataset(f) for f in files]
    _check_one_series(datasets, files, where)
    if len(datasets) == 1:
        return _single_file_volume(datasets[0], files[0])
    _check_same_grid(datasets, files, where)
    try:
        return _stack(datasets, files, where)
    except RadsynthError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as err:
        raise UnreadableImage(f"malformed DICOM series: {one_line(err)}", where) from err


def _series_files(source: str | Path | Sequence[str | Path]) -> tuple[list[Path], Path]:
    """The files of the one series in ``source`` and the folder to name in errors."""
    if isinstance(source, str | os.PathLike):
        folder = Path(source)
        index = find_dicom_series(folder)
        if not index:
            raise UnreadableImage(f"no DICOM image files ({len(index.skipped)} other files)", folder)
        if len(index) > 1:
            sizes = ", ".join(f"{uid} ({len(files)} files)" for uid, files in index.items())
            raise GeometryMismatch(f"mixed series: {len(index)} series in one folder: {sizes}", folder)
        return next(iter(index.values())), folder
    files = [Path(f) for f in source]
    if not files:
        raise InvalidInput("no files given for the DICOM series")
    return files, Path(os.path.commonpath([f.parent for f in files]))


def _check_one_series(datasets: list[Dataset], files: list[Path], where: Path) -> None:
    for ds, path in zip(datasets, files, strict=True):
        if not has_pixels(ds):
            raise UnreadableImage(f"{path.name} has no Pixel Data", where)
    uids = Counter(str(ds.get("SeriesInstanceUID", "")) for ds in datasets)
    if len(uids) > 1:
        raise GeometryMismatch(f"mixed series: {len(uids)} SeriesInstanceUIDs among the files", where)
    if len(datasets) > 1 and any(number_of_frames(ds) > 1 for ds in datasets):
        raise GeometryMismatch("multi-frame files mixed into a multi-file series", where)
    try:  # each file is checked against its own bytes when decoded; here the whole stack
        voxels = sum(int(ds.Rows) * int(ds.Columns) * number_of_frames(ds) for ds in datasets)
    except (AttributeError, TypeError, ValueError) as err:
        raise UnreadableImage(f"malformed DICOM series: {one_line(err)}", where) from err
    if voxels > MAX_VOXELS:
        raise UnreadableImage(f"{voxels:,} voxels in the series; the limit is {MAX_VOXELS:,}", where)


def _single_file_volume(ds: Dataset, path: Path) -> Image:
    """A series of one file: a multi-frame volume, or one slice as a (1, y, x) volume."""
    image = image_from_dataset(ds, path)
    if image.spatial_ndim == 3:
        return image
    stack = _positions_and_orientation([ds])
    if stack is None:
        # no position in space (projection X-ray, secondary capture): keep the in-plane
        # geometry, add a unit-spaced slice axis
        direction = np.eye(3)
        direction[:2, :2] = image.direction
        return Image(
            array=image.array[None],
            spacing=(*image.spacing, 1.0),
            origin=(*image.origin, 0.0),
            direction=direction,
            modality=image.modality,
            units=image.units,
            rgb=image.rgb,
            metadata=image.metadata,
        )
    positions, orientations = stack
    thickness = float(ds.get("SliceThickness") or 1.0)
    return Image(
        array=image.array[None],
        spacing=(*image.spacing, thickness),
        origin=tuple(positions[0]),
        direction=direction_from_orientation(orientations[0]),
        modality=image.modality,
        units=image.units,
        rgb=image.rgb,
        metadata=image.metadata,
    )


def _check_same_grid(datasets: list[Dataset], files: list[Path], where: Path) -> None:
    """All slices must share shape, samples per pixel and pixel spacing."""
    shapes = Counter(
        (int(ds.Rows), int(ds.Columns), int(ds.get("SamplesPerPixel", 1) or 1)) for ds in datasets
    )
    if len(shapes) > 1:
        detail = ", ".join(f"{r}x{c}x{s} in {n} files" for (r, c, s), n in shapes.most_common())
        raise MixedShapes(f"mixed shapes: {detail}", where)
    spacings = Counter(pixel_spacing(ds)[0] for ds in datasets)
    if len(spacings) > 1 and not _close(list(spacings)):
        raise GeometryMismatch(f"mixed pixel spacings: {sorted(spacings)}", where)


def _close(values: list[tuple[float, float]]) -> bool:
    return bool(np.allclose(values, values[0], rtol=1e-4, atol=1e-5))


def _positions_and_orientation(datasets: list[Dataset]) -> tuple[np.ndarray, np.ndarray] | None:
    positions = [floats(ds.get("ImagePositionPatient")) for ds in datasets]
    orientations = [floats(ds.get("ImageOrientationPatient")) for ds in datasets]
    if any(p is None or p.shape != (3,) for p in positions):
        return None
    if any(o is None or o.shape != (6,) for o in orientations):
        return None
    return np.stack(positions), np.stack(orientations)


def _raise_mixed_orientations(orientations: np.ndarray, files: list[Path], where: Path) -> None:
    """Name the files whose orientation differs from the one most files share."""
    common = Counter(tuple(np.round(o, 3)) for o in orientations).most_common(1)[0][0]
    odd = [f.name for f, o in zip(files, orientations, strict=True) if not np.allclose(o, common, atol=1e-3)]
    raise MixedOrientations(
        f"mixed orientations: {len(odd)} of {len(files)} files differ from the others (e.g. {odd[0]})",
        where,
    )


def _stack(datasets: list[Dataset], files: list[Path], where: Path) -> Image:
    spacing_xy, assumed = pixel_spacing(datasets[0])
    found = _positions_and_orientation(datasets)
    if found is None:
        raise GeometryMismatch(
            "slices lack Image Position/Orientation (Patient): cannot order them in space", where
        )
    positions, orientations = found
    if not same_orientation(list(orientations)):
        _raise_mixed_orientations(orientations, files, where)
    geometry = stack_slices(positions, orientations[0], spacing_xy, where)
    slices = [decode_pixels(datasets[i], files[i]) for i in geometry.order]
    arrays = [s.array[0] for s in slices]
    if any(np.issubdtype(a.dtype, np.floating) for a in arrays):
        arrays = [a.astype(np.float32) for a in arrays]
    first = int(geometry.order[0])
    metadata = dicom_metadata(datasets[first], slices[0].notes)
    for per_file in ("SOPInstanceUID", "InstanceNumber"):  # the volume is not one instance
        metadata.pop(per_file, None)
    metadata.update(source_path=str(where), n_files=len(files))
    if assumed:
        metadata["geometry_assumed"] = assumed
    return Image(
        array=np.stack(arrays),  # (z, y, x[, 3])
        spacing=geometry.spacing,
        origin=geometry.origin,
        direction=geometry.direction,
        modality=str(datasets[first].get("Modality", "") or "OT"),
        units=slices[0].units,
        rgb=slices[0].rgb,
        metadata=metadata,
    )
