"""The audit log: one JSON line per synthetic output, each line hash-chained to the one
before, so an edited, inserted or removed line is found by :func:`check_log`.

Each line holds ``seq``, ``time``, ``output_id``, ``model_id``, ``prompt_sha256`` (the
prompt itself stays out of the log), ``files`` (name -> sha256 of the bytes written),
``prev`` (the previous line's ``hash``) and ``hash`` (sha256 of the line's canonical JSON
without ``hash``). A chain alone cannot tell a log whose last lines were cut off from a
shorter log, so a head file beside it (``<log>.head``) keeps the count and last hash.

An output deleted before it was published (a service job interrupted by a crash and run
again from scratch) gets a later line with ``abandoned`` (the reason) and no files, so
the log keeps matching the files that exist.

Appends take an exclusive ``flock`` so concurrent writers (the CLI and the service)
never interleave lines or fork the chain.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from radsynth.errors import InvalidInput
from radsynth.io import write_text_atomic

GENESIS = "0" * 64


def default_log(fallback: Path | None = None) -> Path:
    """``$RADSYNTH_AUDIT_LOG``, else ``fallback`` (the service: its data folder's
    ``audit.jsonl``), else ``$XDG_DATA_HOME/radsynth/audit.jsonl`` (``~/.local/share``).
    One rule for the CLI and the service, so ``radsynth audit check`` finds what either wrote."""
    if os.environ.get("RADSYNTH_AUDIT_LOG"):
        return Path(os.environ["RADSYNTH_AUDIT_LOG"])
    if fallback is not None:
        return fallback
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data / "radsynth" / "audit.jsonl"


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _line_hash(entry: dict[str, Any]) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _head_path(log: Path) -> Path:
    return log.with_name(log.name + ".head")


def append_entries(records: Iterable[dict[str, Any]], log: str | Path | None = None) -> list[dict[str, Any]]:
    """Append one chained line per record (``output_id``, ``model_id``, ``prompt``,
    ``files``: paths to hash); returns the lines written."""
    log = Path(log) if log is not None else default_log()
    log.parent.mkdir(parents=True, exist_ok=True)
    written = []
    with open(log, "a+", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            prev, seq = _chain_end(log, f)
            for record in records:
                entry = {
                    "seq": seq,
                    "time": datetime.now(UTC).isoformat(timespec="seconds"),
                    "output_id": record["output_id"],
                    "model_id": record.get("model_id", ""),
                    "prompt_sha256": hashlib.sha256(str(record.get("prompt", "")).encode()).hexdigest(),
                    "files": {Path(p).name: sha256_file(p) for p in record.get("files", [])},
                    "prev": prev,
                }
                entry["hash"] = _line_hash(entry)
                f.write(json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n")
                written.append(entry)
                prev, seq = entry["hash"], seq + 1
            f.flush()
            os.fsync(f.fileno())
            write_text_atomic(_head_path(log), json.dumps({"count": seq, "last_hash": prev}) + "\n")
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
    return written


def abandon_outputs(output_ids: Iterable[str], reason: str, log: str | Path | None = None) -> list[str]:
    """Record that logged outputs were deleted unpublished (a job interrupted by a crash and
    rerun from scratch under new output ids), so the log keeps matching the files: one
    chained line per id with ``abandoned``: ``reason``. Ids never logged, or already
    abandoned, are skipped; returns the ids recorded."""
    log = Path(log) if log is not None else default_log()
    wanted = set(output_ids)
    if not wanted or not log.is_file():
        return []
    with open(log, "a+", encoding="utf-8") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            f.seek(0)
            live: set[str] = set()
            for text in f.read().splitlines():
                entry = json.loads(text)
                if entry.get("abandoned"):
                    live.discard(entry.get("output_id"))
                else:
                    live.add(entry.get("output_id"))
            gone = sorted(wanted & live)
            prev, seq = _chain_end(log, f)
            for output_id in gone:
                entry = {
                    "seq": seq,
                    "time": datetime.now(UTC).isoformat(timespec="seconds"),
                    "output_id": output_id,
                    "abandoned": reason,
                    "files": {},
                    "prev": prev,
                }
                entry["hash"] = _line_hash(entry)
                f.write(json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n")
                prev, seq = entry["hash"], seq + 1
            if gone:
                f.flush()
                os.fsync(f.fileno())
                write_text_atomic(_head_path(log), json.dumps({"count": seq, "last_hash": prev}) + "\n")
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
    return gone


def _chain_end(log: Path, f) -> tuple[str, int]:
    """(last hash, next seq): from the head file, so an append does not read the whole log;
    from the last line when there is no head file yet."""
    head = _head_path(log)
    if head.is_file():
        state = json.loads(head.read_text(encoding="utf-8"))
        return state["last_hash"], state["count"]
    f.seek(0)
    lines = f.read().splitlines()
    if not lines:
        return GENESIS, 0
    last = json.loads(lines[-1])
    return last["hash"], last["seq"] + 1


@dataclass(frozen=True)
class AuditReport:
    """``ok`` with ``lines`` checked, or the first ``problem`` and its 1-based ``line``."""

    ok: bool
    lines: int
    problem: str = ""
    line: int | None = None


def check_log(log: str | Path | None = None) -> AuditReport:
    """Verify every line's hash, the chain, the sequence numbers and the head file."""
    log = Path(log) if log is not None else default_log()
    if not log.is_file():
        raise InvalidInput("no audit log here", log)
    lines = log.read_text(encoding="utf-8").splitlines()
    prev = GENESIS
    for i, text in enumerate(lines, start=1):
        try:
            entry = json.loads(text)
        except json.JSONDecodeError:
            return AuditReport(False, i - 1, "not a JSON line", i)
        if entry.get("seq") != i - 1:
            return AuditReport(False, i - 1, f"sequence number {entry.get('seq')} where {i - 1} was due", i)
        if entry.get("prev") != prev:
            return AuditReport(
                False, i - 1, "chain broken: a line before it was changed, removed or inserted", i
            )
        if _line_hash(entry) != entry.get("hash"):
            return AuditReport(False, i - 1, "line changed after it was written (hash mismatch)", i)
        prev = entry["hash"]
    head = _head_path(log)
    if head.is_file():
        state = json.loads(head.read_text(encoding="utf-8"))
        if state.get("count") != len(lines) or state.get("last_hash") != prev:
            return AuditReport(
                False,
                len(lines),
                f"the log ends early: the head file records "
                f"{state.get('count')} lines, the log has {len(lines)}",
            )
    elif lines:
        return AuditReport(False, len(lines), "head file missing: cannot tell whether lines were cut off")
    return AuditReport(True, len(lines))


def find_output(output_id: str, log: str | Path | None = None) -> dict[str, Any] | None:
    """The log line of ``output_id``, or None (also when a later line abandoned it)."""
    log = Path(log) if log is not None else default_log()
    if not log.is_file():
        return None
    found = None
    for text in log.read_text(encoding="utf-8").splitlines():
        entry = json.loads(text)
        if entry.get("output_id") == output_id:
            found = None if entry.get("abandoned") else entry
    return found
