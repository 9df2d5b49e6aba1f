"""Where a reader may go: a root folder, minus what must never be read from it.

A manifest is data from someone else; its records name image files. Read on behalf of a
remote client (the service's evaluation jobs), a record naming ``/etc/shadow``, ``../..``
or the service's own database would make the server read, or reveal the existence of,
files the client has no right to. A :class:`Confinement` is handed to the readers of
records and batch cards so each path is checked before anything is opened: written
relative, with no ``..``, and resolving (links followed) inside ``root`` and outside every
``excluded`` path. The check never looks at whether the file exists, so a refusal says
nothing about the disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from radsynth.errors import InvalidInput


@dataclass(frozen=True)
class Confinement:
    """``root`` and ``excluded`` are resolved absolute paths (see :meth:`of`)."""

    root: Path
    excluded: tuple[Path, ...] = ()

    @classmethod
    def of(cls, root: str | Path, excluded: tuple[str | Path, ...] = ()) -> Confinement:
        return cls(Path(root).resolve(), tuple(Path(p).resolve() for p in excluded))

    def allows(self, path: str | Path) -> bool:
        """Whether ``path`` (links followed, existing or not) lies inside the root and
        outside every excluded path."""
        try:
            target = Path(path).resolve()
        except (OSError, RuntimeError):  # a name too long, a link loop: nothing to read there
            return False
        return target.is_relative_to(self.root) and not any(target.is_relative_to(p) for p in self.excluded)

    def entry(self, base: Path, written: str, where: str | Path) -> Path:
        """``written`` (a record's path, relative to ``base``) as a path this confinement
        allows; ``InvalidInput`` naming the record as written otherwise. ``where``: the
        manifest or card (and line) the path came from, for the message."""
        if "\x00" in written:
            raise InvalidInput(f"{where}: path {written[:100]!r} holds a NUL byte")
        parts = PurePosixPath(written.replace("\\", "/")).parts
        if not parts or written.startswith(("/", "\\")) or (len(written) > 1 and written[1] == ":"):
            raise InvalidInput(f"{where}: path {written[:100]!r} is absolute; name files relative to it")
        if ".." in parts:
            raise InvalidInput(f"{where}: path {written[:100]!r} climbs out with '..'")
        target = base.joinpath(*parts)
        if not self.allows(target):
            raise InvalidInput(f"{where}: path {written[:100]!r} leads outside what this request may read")
        return target
