"""Exceptions a user can act on.

Each failure a user can fix has its own type and a message that names the file (or
argument) and the problem in one line. The CLI catches ``RadsynthError`` once and prints
that line; library users catch the specific type.
"""

from __future__ import annotations

from pathlib import Path


class RadsynthError(Exception):
    """Base class: ``str(err)`` is the one line shown to a user."""

    def __init__(self, problem: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path is not None else problem)


class UnreadableImage(RadsynthError):
    """A file (or series) that cannot be decoded into an image."""


class GeometryMismatch(RadsynthError):
    """Slices or volumes whose spacing, orientation or shape do not fit together."""


class NonFiniteVoxels(UnreadableImage):
    """An image holding NaN or infinite values: they poison every statistic downstream."""


class MissingSlices(GeometryMismatch):
    """A series with a gap where slices should be (one or more slices missing)."""


class MixedOrientations(GeometryMismatch):
    """Slices or frames whose orientations differ: not one volume."""


class RepeatedPositions(GeometryMismatch):
    """Slices of one series at the same position that nothing tells apart (no echo,
    temporal position or acquisition number differs): several volumes, or copies."""


class MixedShapes(GeometryMismatch):
    """Slices of one series with different matrix sizes: not one volume."""


class InvalidInput(RadsynthError):
    """An argument, folder, CSV or manifest that is not what the command needs."""


class NotAnImage(InvalidInput):
    """Pixels that are not a picture of anatomy: a dose grid, a segmentation, a map."""


class NotInCsv(InvalidInput):
    """An image that the CSV of texts given with it does not list."""


class CsvUnusable(InvalidInput):
    """An image with no text because the CSV of texts given with it cannot be used."""


class CheckpointMismatch(RadsynthError):
    """Weights that do not fit the configuration they are loaded into."""


class MissingExtra(RadsynthError):
    """A feature whose optional dependencies are not installed; names the extra to install."""


class NotEnoughSamples(InvalidInput):
    """A set too small for a metric to mean anything; the metric is not reported."""


class SetMismatch(InvalidInput):
    """Two image sets that cannot be compared as given (image size, modality)."""


class PacsUnavailable(RadsynthError):
    """A PACS (DICOMweb server) that did not answer, or refused, after the retries with backoff."""


class OutOfDomain(InvalidInput):
    """A prompt asking a generator for what it never learnt (another modality); the one
    line says what the model draws."""
