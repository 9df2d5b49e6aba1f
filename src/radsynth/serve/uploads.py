"""Uploaded files on disk, safely: size-capped streaming, clean names, guarded zip extraction.

Everything a client sends is hostile until checked: a file name may climb out of the job
folder (``../../etc/passwd``), a body may be larger than its Content-Length said, and a
42 kB zip may hold petabytes. Each check fails with one line naming the file and the problem.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import BinaryIO

from radsynth.errors import InvalidInput
from radsynth.serve.paths import check_client_path
from radsynth.serve.settings import Limits

CHUNK = 1 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class UploadTooLarge(InvalidInput):
    """A body or an archive bigger than the service's limit (HTTP 413)."""


def safe_name(name: str | None) -> str:
    """A file name that stays where it is put: traversal is refused, odd characters replaced.

    A client's name is only a label, so a leading folder is refused rather than stripped:
    silently keeping ``passwd`` of ``../../etc/passwd`` would hide an attack in the logs.
    """
    name = (name or "").strip()
    if not name:
        return "upload"
    parts = {*PurePosixPath(name).parts, *PureWindowsPath(name).parts}
    if "\x00" in name or ".." in parts or len(PurePosixPath(name).parts) > 1 or "\\" in name:
        raise InvalidInput("file name with a folder or '..' in it is not accepted", name[:200])
    cleaned = _UNSAFE.sub("_", name).lstrip(".")
    return cleaned[:200] or "upload"


def save_stream(stream: BinaryIO, path: Path, max_bytes: int, label: str) -> int:
    """Copy ``stream`` to ``path`` in chunks, stopping (and deleting) past ``max_bytes``."""
    written = 0
    try:
        with open(path, "wb") as out:
            while chunk := stream.read(CHUNK):
                written += len(chunk)
                if written > max_bytes:
                    raise UploadTooLarge(f"larger than the {max_bytes / 1024**2:g} MB upload limit", label)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return written


def extract_zip(archive: Path, folder: Path, limits: Limits) -> list[Path]:
    """The files of ``archive`` under ``folder`` (members named safely, flat or in subfolders
    that stay inside), refusing traversal, links, too many members, and more than
    ``limits.max_unzipped_bytes`` or ``limits.max_zip_ratio`` times the archive's size."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise InvalidInput(f"not a readable zip archive ({err})", archive.name) from None
    budget = min(limits.max_unzipped_bytes, int(max(archive.stat().st_size, 1) * limits.max_zip_ratio))
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        if len(members) > limits.max_files:
            raise UploadTooLarge(
                f"{len(members)} files in the archive; the limit is {limits.max_files}", archive.name
            )
        root = folder.resolve()
        written, total = [], 0
        for member in members:
            if stat.S_ISLNK(member.external_attr >> 16):
                raise InvalidInput(f"archive member {member.filename!r} is a link", archive.name)
            target = _member_path(member.filename, root, archive.name)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:  # a member under a file of the same name, a full disk
                raise InvalidInput(
                    f"cannot unpack archive member {member.filename[:200]!r} ({err.strerror})", archive.name
                ) from None
            try:
                with zf.open(member) as src:
                    total += save_stream(src, target, budget - total, archive.name)
            except UploadTooLarge:
                raise UploadTooLarge(
                    f"expands beyond {budget / 1024**2:g} MB (limit: {limits.max_zip_ratio:g}x its size, "
                    f"at most {limits.max_unzipped_mb:g} MB); refused as a possible zip bomb",
                    archive.name,
                ) from None
            except (zipfile.BadZipFile, OSError, EOFError) as err:
                raise InvalidInput(
                    f"archive member {member.filename!r} is corrupt ({err})", archive.name
                ) from None
            written.append(target)
    return written


def _member_path(name: str, root: Path, label: str) -> Path:
    check_client_path(name, f"{label}: archive member")
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if not parts or name.startswith("/") or ".." in parts or re.match(r"^[A-Za-z]:", name):
        raise InvalidInput(f"archive member {name!r} points outside the archive", label)
    target = root.joinpath(*(safe_name(p) for p in parts)).resolve()
    if os.path.commonpath([target, root]) != str(root):
        raise InvalidInput(f"archive member {name!r} points outside the archive", label)
    return target


def store_uploads(files: list, folder: Path, limits: Limits) -> list[Path]:
    """Uploads saved under ``folder`` by safe names; zips expanded (with the bomb checks)."""
    stored: list[Path] = []
    budget = limits.max_upload_bytes
    for upload in files:
        name = safe_name(upload.filename)
        target = folder / name
        n = 1
        while target.exists():
            target, n = folder / f"{n}-{name}", n + 1
        budget -= save_stream(upload.file, target, budget, name)
        if target.suffix.lower() == ".zip":
            unpacked = folder / (target.stem + "-unzipped")
            stored += extract_zip(target, unpacked, limits)
            target.unlink()
        else:
            stored.append(target)
    if len(stored) > limits.max_files:
        raise UploadTooLarge(f"{len(stored)} files; the limit is {limits.max_files}")
    return stored


INPUTS = ("input", "input-series")


def discard_inputs(folder: Path) -> None:
    """Delete a job's uploaded input once the job has ended: a failed or cancelled job's
    files would otherwise stay on the server (and a finished job's are in its outputs)."""
    for name in INPUTS:
        shutil.rmtree(folder / name, ignore_errors=True)


def input_digest(folder: Path) -> str:
    """SHA-256 over a stored input's relative names and bytes: what makes two uploads
    the same request for the Idempotency-Key."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(p for name in INPUTS for p in (folder / name).rglob("*") if p.is_file()):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def store_input(upload, folder: Path, limits: Limits) -> str:
    """One translation input under ``folder/input``: a volume file, or a DICOM series
    (one .dcm or a zip of them, kept as a folder). Returns its path relative to ``folder``."""
    inputs = folder / "input"
    inputs.mkdir(parents=True)
    try:
        stored = store_uploads([upload], inputs, limits)
        if not stored:
            raise InvalidInput("the upload holds no files", upload.filename)
        names = [p.name.lower() for p in stored]
        if len(stored) == 1 and not names[0].endswith(".dcm"):
            if not names[0].endswith((".nii", ".nii.gz", ".nrrd", ".mha", ".mhd")):
                raise InvalidInput(
                    "send a NIfTI/NRRD/MHA volume, a .dcm file or a zip of a DICOM series", stored[0].name
                )
            return stored[0].relative_to(folder).as_posix()
        series = folder / "input-series"
        series.mkdir()
        for path in stored:
            path.replace(series / f"{len(list(series.iterdir())):05d}-{path.name}")
        return series.relative_to(folder).as_posix()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
