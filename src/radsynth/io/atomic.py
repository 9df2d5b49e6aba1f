"""Write files so a crash or an error never leaves a half-written output behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from radsynth.errors import InvalidInput


def _make_parent(path: Path) -> None:
    """Create ``path``'s folder, or say in one line which ancestor is in the way."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        blocker = next((p for p in (path.parent, *path.parent.parents) if p.is_file()), None)
        problem = (
            f"cannot write here: {blocker} is a file, not a folder"
            if blocker is not None
            else f"cannot create folder {path.parent}: {err.strerror or err}"
        )
        raise InvalidInput(problem, path) from err


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    The temporary name keeps the final suffixes (``.nii.gz`` stays ``.nii.gz``) so writers
    that pick a format from the extension behave as for the final name. Works for files
    and for folders (a DICOM series): a folder replaces the old one whole.
    """
    path = Path(path)
    _make_parent(path)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp" + "".join(path.suffixes), dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        yield tmp
        if tmp.is_dir() and path.is_dir():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
