"""A caller's jobs: list, status, cancel, push to the PACS again, and the files a job
wrote (only under its ``out/`` folder, only for its owner or an admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse

from radsynth.errors import InvalidInput, PacsUnavailable
from radsynth.serve.deps import Caller, Generator, SettingsDep, StoreDep, WorkersDep, job_json, owned
from radsynth.serve.paths import check_client_path
from radsynth.serve.uploads import discard_inputs

router = APIRouter(prefix="/api/jobs")


@router.get("")
def jobs(who: Caller, store: StoreDep, limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    """This token's jobs (an admin's: everyone's), newest first."""
    owner = None if "admin" in who.scopes else who.id
    return {"jobs": [job_json(j) for j in store.jobs(owner, limit=limit)]}


@router.get("/{job_id}")
def job(job_id: str, who: Caller, store: StoreDep) -> dict[str, Any]:
    return job_json(owned(job_id, who, store))


@router.post("/{job_id}/cancel")
def cancel(job_id: str, who: Caller, store: StoreDep, settings: SettingsDep) -> dict[str, Any]:
    owned(job_id, who, store)
    cancelled = store.cancel(job_id)
    if cancelled.state == "cancelled":  # a running job's worker discards its own at the end
        discard_inputs(settings.jobs_dir / job_id)
    return job_json(cancelled)


@router.post("/{job_id}/push")
def push(
    job_id: str, who: Generator, store: StoreDep, settings: SettingsDep, workers: WorkersDep
) -> dict[str, Any]:
    """Push a finished job's DICOM files to the PACS again (after it was down)."""
    from radsynth.serve.jobs import JobContext, JobFailed, push_to_pacs

    found = owned(job_id, who, store)
    if found.state not in ("done", "failed") or not found.results:
        raise InvalidInput(f"job {job_id} has no results to push (state {found.state})")
    ctx = JobContext(found, settings.jobs_dir / found.id, settings, store, workers.pipelines)
    files = sorted((ctx.folder / "out").rglob("*.dcm"))
    try:
        pushed = push_to_pacs(ctx, files, found.results)
    except JobFailed as err:
        raise PacsUnavailable(str(err)) from err
    store.finish(job_id, "done", results={**found.results, "pacs": pushed})
    return job_json(store.job(job_id))


@router.get("/{job_id}/files/{path:path}")
def job_file(job_id: str, path: str, who: Caller, store: StoreDep, settings: SettingsDep) -> FileResponse:
    owned(job_id, who, store)
    check_client_path(path, "file")
    root = (settings.jobs_dir / job_id / "out").resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise HTTPException(404, f"no file {path} in job {job_id}")
    return FileResponse(target, filename=target.name)
