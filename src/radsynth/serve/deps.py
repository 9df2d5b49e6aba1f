"""What a route needs, as FastAPI dependencies: the service's parts (kept on ``app.state``
by ``create_app``) and the caller's token, checked for a scope.

A handler states what it needs in its signature (``store: StoreDep``, ``who: Generator``)
instead of closing over ``create_app``'s locals, so each resource's routes live in their
own module (``serve/routes/``) and a test can see at a glance what a route may touch.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from radsynth.serve.settings import ServeSettings
from radsynth.serve.store import Job, Store, Token
from radsynth.serve.worker import Workers


def get_settings(request: Request) -> ServeSettings:
    return request.app.state.settings


def get_store(request: Request) -> Store:
    return request.app.state.store


def get_workers(request: Request) -> Workers:
    return request.app.state.workers


SettingsDep = Annotated[ServeSettings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
WorkersDep = Annotated[Workers, Depends(get_workers)]


def token(scope: str | None = None):
    """A dependency: the caller's token from ``Authorization: Bearer``, holding ``scope``
    (or ``admin``); 401 without a valid token, 403 without the scope."""

    def check(request: Request, store: StoreDep) -> Token:
        header = request.headers.get("authorization", "")
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise HTTPException(401, "missing API token: send 'Authorization: Bearer <token>'")
        found = store.authenticate(secret.strip())
        if found is None:
            raise HTTPException(401, "unknown or revoked API token")
        if scope is not None and scope not in found.scopes and "admin" not in found.scopes:
            raise HTTPException(403, f"this token lacks the '{scope}' scope")
        return found

    return check


Caller = Annotated[Token, Depends(token())]
Generator = Annotated[Token, Depends(token("generate"))]
Verifier = Annotated[Token, Depends(token("verify"))]
Admin = Annotated[Token, Depends(token("admin"))]


def owned(job_id: str, who: Token, store: Store) -> Job:
    """The job, if ``who`` made it (or is an admin); 404 otherwise, whether or not it exists."""
    job = store.job(job_id)
    if job is None or (job.token_id != who.id and "admin" not in who.scopes):
        raise HTTPException(404, f"no job {job_id}")
    return job


def too_busy(settings: ServeSettings) -> HTTPException:
    return HTTPException(
        429,
        f"this token already has {settings.limits.jobs_per_token} queued or running jobs; retry later",
        headers={"Retry-After": str(settings.limits.retry_after_s)},
    )


def job_json(job: Job) -> dict[str, Any]:
    """A job as the API shows it (the owner's token id and the cancel flag stay inside)."""
    return {
        "id": job.id,
        "kind": job.kind,
        "state": job.state,
        "progress": {"done": job.done, "total": job.total},
        "params": job.params,
        "error": job.error,
        "attempts": job.attempts,
        "created": job.created,
        "updated": job.updated,
        "results": job.results,
    }
