"""Paths a client names, and paths the server shows back.

In: every path in a request (a job file's URL, an evaluation input, a zip member) is
checked as text before it touches the file system: a NUL byte, a 300-character name or a
path 3,000 folders deep would otherwise surface as ``ValueError``/``ENAMETOOLONG`` deep in
a handler (a 500 and a traceback) instead of one line.

Evaluation inputs are only what the caller owns: its own finished generate jobs
(``job:<id>``) or files under a ``--data-root``; never anything in the service's own state
(database, audit log, tokens, other jobs, the jobs folder), even where a data root holds
the data folder.

Out: error texts and evidence name files relative to what the caller sent, never by the
server's absolute paths (:func:`shown`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from radsynth.data.confine import Confinement
from radsynth.errors import InvalidInput
from radsynth.serve.settings import ServeSettings
from radsynth.serve.store import Store, Token

MAX_PATH_CHARS = 1024
MAX_DEPTH = 32
MAX_NAME_BYTES = 255  # one name on ext4, xfs, btrfs


def check_client_path(text: str, what: str) -> str:
    """``text`` if it can be a path on this server; one-line ``InvalidInput`` otherwise."""
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InvalidInput(f"{what}: control character (NUL, newline, ...) in a path")
    if len(text) > MAX_PATH_CHARS:
        raise InvalidInput(f"{what}: path of {len(text)} characters; the limit is {MAX_PATH_CHARS}")
    parts = PurePosixPath(text.replace("\\", "/")).parts
    if len(parts) > MAX_DEPTH:
        raise InvalidInput(f"{what}: path {len(parts)} folders deep; the limit is {MAX_DEPTH}")
    longest = max((len(p.encode("utf-8", "surrogatepass")) for p in parts), default=0)
    if longest > MAX_NAME_BYTES:
        raise InvalidInput(f"{what}: a name of {longest} bytes in the path; the limit is {MAX_NAME_BYTES}")
    return text


def service_state(settings: ServeSettings) -> tuple[Path, ...]:
    """What no request may read as data: the data folder (database, tokens, jobs, gate)
    and the audit log with its head file, wherever ``RADSYNTH_AUDIT_LOG`` put it."""
    log = settings.audit_log
    return settings.data_dir, log, log.with_name(log.name + ".head")


@dataclass(frozen=True)
class Source:
    """An evaluation input: the file or folder to read, the confinement its records must
    keep to, and the folder it names (``folder``) as the caller wrote it (``shown``)."""

    path: Path
    within: Confinement
    shown: str

    @property
    def folder(self) -> Path:
        return self.path if self.path.is_dir() else self.path.parent


def evaluation_source(
    value: str, what: str, settings: ServeSettings, store: Store, owner: Token | str
) -> Source:
    """``value`` from an evaluate request, for a caller (a token, or the owning token's id
    when the worker resolves it again before reading): ``job:<id>`` of the caller's own
    finished generate job, or a file or folder under a ``--data-root`` (absolute, or
    relative to a data root). Anything else is refused in one line that says nothing about
    what exists outside those places."""
    check_client_path(value, what)
    if value.startswith("job:"):
        return _job_source(value, what, settings, store, owner)
    refused = InvalidInput(
        f"{what} must be job:<id> of your own generate job or a path under the server's data folders "
        f"(--data-root), got {value[:200]!r}"
    )
    if ".." in PurePosixPath(value).parts:
        raise refused
    for root in settings.data_roots:
        within = Confinement.of(root, service_state(settings))
        target = Path(root) / value  # an absolute value replaces the root
        if within.allows(target) and os.path.exists(target):  # False, not an error, when unreadable
            written = PurePosixPath(value)
            return Source(target.resolve(), within, str(written if target.is_dir() else written.parent))
    raise refused


def _job_source(value: str, what: str, settings: ServeSettings, store: Store, owner: Token | str) -> Source:
    job_id = value[4:]
    found = store.job(job_id) if job_id.isalnum() else None
    owner_id = owner if isinstance(owner, str) else owner.id
    admin = not isinstance(owner, str) and "admin" in owner.scopes
    if found is None or (found.token_id != owner_id and not admin):
        raise InvalidInput(f"{what}: no job {job_id[:64]}")
    if found.kind != "generate" or found.state != "done":
        raise InvalidInput(f"{what}: job {found.id} is not a finished generate job")
    out = (settings.jobs_dir / found.id / "out").resolve()
    return Source(out / "png", Confinement.of(out), value)


def shown(value: Any, settings: ServeSettings, known: dict[Path, str] | None = None) -> Any:
    """``value`` (text, or JSON-like evidence) with absolute server paths written the way
    the caller knows them: each of ``known`` (a folder -> the name the caller sent for it),
    each data root as configured, the audit log and anything else in the data folder as
    ``<audit log>`` and ``<data>``. Longest paths first, so a job folder wins over its
    parent."""
    replacements: dict[Path, str] = {Path(r).resolve(): str(r) for r in settings.data_roots}
    data = settings.data_dir.resolve()
    replacements |= {data: "<data>", settings.audit_log.resolve(): "<audit log>", **(known or {})}
    text = json.dumps(value)
    for path, name in sorted(replacements.items(), key=lambda kv: -len(str(kv[0]))):
        prefix = str(path).rstrip("/")
        text = text.replace(json.dumps(prefix + "/")[1:-1], json.dumps(f"{name}/" if name else "")[1:-1])
        text = text.replace(json.dumps(prefix)[1:-1], json.dumps(name or ".")[1:-1])
    return json.loads(text)
