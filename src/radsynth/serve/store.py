"""The service's state in one SQLite file: API tokens (hashed), the job queue and the
reader studies (``serve.study``: their images, readers, invitations and answers).

Why SQLite: a job accepted with 202 must outlive the process that accepted it. Every state
change is one committed transaction (WAL journal), so a crash or restart at any point leaves
each job queued, running, done, failed or cancelled, never half-written. At start-up the
server calls ``recover()``: jobs that were running when it died go back to the queue (every
job is deterministic in its seed and rewrites its output folder, so a rerun is a resume)
and fail with the reason after ``MAX_ATTEMPTS`` starts.

Tokens are 256-bit random strings, stored only as SHA-256 digests: with that much entropy a
slow password hash adds nothing, and a stolen database gives no usable token.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from radsynth.errors import InvalidInput

SCOPES = ("generate", "verify", "admin", "study")
STATES = ("queued", "running", "done", "failed", "cancelled")
ACTIVE = ("queued", "running")
MAX_ATTEMPTS = 3
TOKEN_PREFIX = "rs_"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    digest TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    token_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    total INTEGER NOT NULL DEFAULT 0,
    results TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel INTEGER NOT NULL DEFAULT 0,
    idem_key TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, created);
CREATE INDEX IF NOT EXISTS jobs_token ON jobs (token_id, state);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_key ON jobs (token_id, idem_key) WHERE idem_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS studies (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    created TEXT NOT NULL,
    params TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS study_items (
    id TEXT PRIMARY KEY,
    study_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    truth TEXT NOT NULL,
    source TEXT NOT NULL,
    evidence TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS study_images (
    id TEXT PRIMARY KEY,
    item_id TEXT NOT NULL,
    study_id TEXT NOT NULL,
    side TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS study_readers (
    study_id TEXT NOT NULL,
    token_id TEXT NOT NULL,
    PRIMARY KEY (study_id, token_id)
);
CREATE TABLE IF NOT EXISTS study_invitations (
    digest TEXT PRIMARY KEY,
    study_id TEXT NOT NULL,
    expires TEXT NOT NULL,
    used_by TEXT
);
CREATE TABLE IF NOT EXISTS study_answers (
    item_id TEXT NOT NULL,
    token_id TEXT NOT NULL,
    study_id TEXT NOT NULL,
    answer TEXT NOT NULL,
    confidence INTEGER NOT NULL,
    response_ms INTEGER NOT NULL,
    time TEXT NOT NULL,
    PRIMARY KEY (item_id, token_id)
);
"""


class KeyReused(InvalidInput):
    """An Idempotency-Key sent again with a different request (HTTP 422)."""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Token:
    id: str
    name: str
    scopes: tuple[str, ...]
    created: str

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "scopes": list(self.scopes), "created": self.created}


@dataclass(frozen=True)
class Job:
    id: str
    token_id: str
    kind: str
    params: dict[str, Any]
    state: str
    done: int
    total: int
    results: dict[str, Any] | None
    error: str | None
    attempts: int
    cancel: bool
    created: str
    updated: str

    @property
    def finished(self) -> bool:
        return self.state not in ACTIVE


class Store:
    """Tokens and jobs; safe to share between the request threads and the worker."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an accepted job is on disk before the 202
        self._db.executescript(_SCHEMA)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def transaction(self):
        """One committed transaction for a module that keeps its own tables here
        (``serve.study``): the same lock, so it never interleaves with the queue's."""
        return self._tx()

    def read(self, query: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(query, args).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # tokens

    def create_token(self, name: str, scopes: list[str] | tuple[str, ...]) -> tuple[Token, str]:
        """A new token: (its record, the secret, shown to the caller once and never stored)."""
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown or not scopes:
            raise ValueError(f"scopes must be among {', '.join(SCOPES)}; got {', '.join(scopes) or 'none'}")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = Token(uuid.uuid4().hex[:12], name, tuple(dict.fromkeys(scopes)), _now())
        with self._tx() as db:
            db.execute(
                "INSERT INTO tokens (id, name, digest, scopes, created) VALUES (?, ?, ?, ?, ?)",
                (token.id, name, digest(secret), ",".join(token.scopes), token.created),
            )
        return token, secret

    def authenticate(self, secret: str) -> Token | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM tokens WHERE digest = ? AND revoked = 0", (digest(secret),)
            ).fetchone()
        return None if row is None else _token(row)

    def tokens(self) -> list[Token]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM tokens WHERE revoked = 0 ORDER BY created").fetchall()
        return [_token(r) for r in rows]

    def revoke_token(self, token_id: str) -> list[str] | None:
        """Revoke a token and cancel its work in the same transaction: queued jobs at once,
        running ones at their next progress report (a revoked client's jobs must not run on).
        Returns the ids of the jobs cancelled while queued, or None when there is no such
        token."""
        now = _now()
        with self._tx() as db:
            if db.execute("UPDATE tokens SET revoked = 1 WHERE id = ?", (token_id,)).rowcount == 0:
                return None
            queued = [
                r[0]
                for r in db.execute(
                    "SELECT id FROM jobs WHERE token_id = ? AND state = 'queued'", (token_id,)
                ).fetchall()
            ]
            db.execute(
                "UPDATE jobs SET state = 'cancelled', error = 'the token was revoked', updated = ?"
                " WHERE token_id = ? AND state = 'queued'",
                (now, token_id),
            )
            db.execute("UPDATE jobs SET cancel = 1 WHERE token_id = ? AND state = 'running'", (token_id,))
        return queued

    # jobs

    def submit(
        self,
        token_id: str,
        kind: str,
        params: dict[str, Any],
        total: int,
        limit: int,
        job_id: str | None = None,
        key: str | None = None,
    ) -> Job | None:
        """Queue a job, or None when the token already has ``limit`` active jobs (checked and
        inserted in one transaction, so concurrent requests cannot overshoot). ``job_id``:
        chosen by the caller when the job's input is stored before it is queued. ``key``:
        the client's Idempotency-Key; a request sent again with it (its answer lost to a
        restart or a dropped connection) gets the job it already made, never a second one;
        the key sent with another request raises ``KeyReused``."""
        now = _now()
        job_id = job_id or uuid.uuid4().hex
        with self._tx() as db:
            if key is not None:
                row = db.execute(
                    "SELECT id, kind, params FROM jobs WHERE token_id = ? AND idem_key = ?", (token_id, key)
                ).fetchone()
                if row is not None:
                    if row["kind"] != kind or json.loads(row["params"]) != json.loads(json.dumps(params)):
                        raise KeyReused(
                            f"Idempotency-Key {key[:64]!r} was used for another request (job {row['id']}); "
                            "send a new key for a new request"
                        )
                    return self._job_in(db, row[0])
            active = db.execute(
                "SELECT COUNT(*) FROM jobs WHERE token_id = ? AND state IN ('queued', 'running')",
                (token_id,),
            ).fetchone()[0]
            if active >= limit:
                return None
            db.execute(
                "INSERT INTO jobs (id, token_id, kind, params, state, total, idem_key, created, updated)"
                " VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
                (job_id, token_id, kind, json.dumps(params), total, key, now, now),
            )
            return self._job_in(db, job_id)

    @staticmethod
    def _job_in(db: sqlite3.Connection, job_id: str) -> Job:
        return _job(db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone())

    def active(self, token_id: str) -> int:
        with self._lock:
            return self._db.execute(
                "SELECT COUNT(*) FROM jobs WHERE token_id = ? AND state IN ('queued', 'running')", (token_id,)
            ).fetchone()[0]

    def job(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else _job(row)

    def jobs(self, token_id: str | None = None, limit: int = 100) -> list[Job]:
        query, args = "SELECT * FROM jobs", ()
        if token_id is not None:
            query, args = query + " WHERE token_id = ?", (token_id,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY created DESC LIMIT ?", (*args, limit)).fetchall()
        return [_job(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall()
        return {state: 0 for state in STATES} | {r[0]: r[1] for r in rows}

    def claim(self) -> Job | None:
        """The oldest queued job, now running (one transaction: two workers never share one)."""
        with self._tx() as db:
            row = db.execute("SELECT id FROM jobs WHERE state = 'queued' ORDER BY created LIMIT 1").fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, done = 0, updated = ?"
                " WHERE id = ?",
                (_now(), row[0]),
            )
        return self.job(row[0])

    def progress(self, job_id: str, done: int, total: int) -> bool:
        """Record progress; True when the job has been asked to cancel."""
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET done = ?, total = ?, updated = ? WHERE id = ?", (done, total, _now(), job_id)
            )
            return bool(db.execute("SELECT cancel FROM jobs WHERE id = ?", (job_id,)).fetchone()[0])

    def finish(
        self, job_id: str, state: str, results: dict[str, Any] | None = None, error: str | None = None
    ):
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state = ?, results = ?, error = ?, updated = ? WHERE id = ?",
                (state, None if results is None else json.dumps(results), error, _now(), job_id),
            )

    def cancel(self, job_id: str) -> Job | None:
        """A queued job is cancelled at once; a running one is flagged and stops at its next
        progress report."""
        with self._tx() as db:
            db.execute(
                "UPDATE jobs SET state = 'cancelled', updated = ? WHERE id = ? AND state = 'queued'",
                (_now(), job_id),
            )
            db.execute("UPDATE jobs SET cancel = 1 WHERE id = ? AND state = 'running'", (job_id,))
        return self.job(job_id)

    def recover(self) -> tuple[int, int]:
        """After a restart: (requeued, failed). Running jobs were interrupted mid-way; they run
        again unless they already had ``MAX_ATTEMPTS`` starts (a job that kills the server
        must not kill it forever)."""
        now = _now()
        with self._tx() as db:
            failed = db.execute(
                "UPDATE jobs SET state = 'failed', updated = ?, error = ? WHERE state = 'running'"
                " AND attempts >= ?",
                (now, f"interrupted by server restarts {MAX_ATTEMPTS} times; not retried", MAX_ATTEMPTS),
            ).rowcount
            cancelled = db.execute(
                "UPDATE jobs SET state = 'cancelled', updated = ? WHERE state = 'running' AND cancel = 1",
                (now,),
            ).rowcount
            requeued = db.execute(
                "UPDATE jobs SET state = 'queued', done = 0, updated = ? WHERE state = 'running'", (now,)
            ).rowcount
        return requeued, failed + cancelled


def _token(row: sqlite3.Row) -> Token:
    return Token(row["id"], row["name"], tuple(row["scopes"].split(",")), row["created"])


def _job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        token_id=row["token_id"],
        kind=row["kind"],
        params=json.loads(row["params"]),
        state=row["state"],
        done=row["done"],
        total=row["total"],
        results=None if row["results"] is None else json.loads(row["results"]),
        error=row["error"],
        attempts=row["attempts"],
        cancel=bool(row["cancel"]),
        created=row["created"],
        updated=row["updated"],
    )
