"""What an ingest skipped and why, and the result both ingest paths return.

Each skipped input is one :class:`Problem`: the file (or series or case folder), a
:class:`SkipKind` for the summary's counts, and the one-line detail. The kind of a failed
read comes from the error's type (``radsynth.errors``), never from its message's words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from radsynth.data.manifest import Record, summarise
from radsynth.data.qc import QCReport
from radsynth.errors import (
    CsvUnusable,
    GeometryMismatch,
    MissingSlices,
    MixedOrientations,
    MixedShapes,
    NonFiniteVoxels,
    NotAnImage,
    NotInCsv,
    RadsynthError,
    RepeatedPositions,
    UnreadableImage,
)


class SkipKind(StrEnum):
    """Why an input was skipped, as the summary counts it (the value is what it prints)."""

    NOT_DICOM = "not a DICOM image"
    NO_PIXELS = "DICOM without pixels (DICOMDIR, report, plan)"
    NOT_ANATOMY = "pixels that are no picture (dose, segmentation)"
    CSV_UNUSABLE = "CSV unusable"
    NO_TEXT = "no text (CSV unusable)"
    NOT_IN_CSV = "not in the CSV"
    INCOMPLETE_CASE = "incomplete case"
    MISSING_SLICES = "missing slices"
    MIXED_ORIENTATIONS = "mixed orientations"
    REPEATED_POSITIONS = "repeated positions nothing tells apart"
    MIXED_SHAPES = "mixed shapes in one series"
    NON_FINITE = "NaN or infinite voxels"
    UNREADABLE = "unreadable"
    BAD_GEOMETRY = "bad geometry"
    INVALID = "invalid"


# Most specific type first: a MissingSlices is also a GeometryMismatch.
_KIND_OF_ERROR: tuple[tuple[type[RadsynthError], SkipKind], ...] = (
    (MissingSlices, SkipKind.MISSING_SLICES),
    (MixedOrientations, SkipKind.MIXED_ORIENTATIONS),
    (RepeatedPositions, SkipKind.REPEATED_POSITIONS),
    (MixedShapes, SkipKind.MIXED_SHAPES),
    (NonFiniteVoxels, SkipKind.NON_FINITE),
    (NotAnImage, SkipKind.NOT_ANATOMY),
    (NotInCsv, SkipKind.NOT_IN_CSV),
    (CsvUnusable, SkipKind.NO_TEXT),
    (UnreadableImage, SkipKind.UNREADABLE),
    (GeometryMismatch, SkipKind.BAD_GEOMETRY),
)


def skip_kind(err: RadsynthError) -> SkipKind:
    """The summary's kind for an input that failed with ``err`` (its detail stays in the line)."""
    return next((kind for cls, kind in _KIND_OF_ERROR if isinstance(err, cls)), SkipKind.INVALID)


@dataclass
class Problem:
    """Something skipped: the file (or series or case folder), its kind, the detail."""

    path: str
    kind: SkipKind
    detail: str

    def __str__(self) -> str:
        return f"{self.path}: {self.detail}"


@dataclass
class IngestResult:
    """What an ingest produced: the records, what was skipped and why, and the QC report."""

    folder: Path
    records: list[Record]
    problems: list[Problem] = field(default_factory=list)
    qc: QCReport | None = None
    inputs: int = 0

    @property
    def manifest(self) -> Path:
        return self.folder / "manifest.jsonl"

    def skipped(self) -> dict[str, int]:
        """Skipped inputs counted by kind of problem."""
        return dict(sorted(Counter(str(p.kind) for p in self.problems).items()))

    def summary(self) -> dict[str, dict[str, int]]:
        return summarise(self.records)


def problem_collector(
    on_problem: Callable[[Problem], None] | None,
) -> tuple[list[Problem], Callable[[Problem], None]]:
    """(the list an ingest reports at the end, the callback that adds to it and tells
    ``on_problem`` at once, so a CLI can show each skipped file as it happens)."""
    problems: list[Problem] = []

    def problem(p: Problem) -> None:
        problems.append(p)
        if on_problem is not None:
            on_problem(p)

    return problems, problem
