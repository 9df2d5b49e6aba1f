"""``/health`` (no token) and the web page at ``/`` (its files under ``/static``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from radsynth import __version__
from radsynth.serve.deps import StoreDep

STATIC = Path(__file__).resolve().parent.parent / "static"
router = APIRouter()


@router.get("/health")
def health(store: StoreDep) -> dict[str, Any]:
    counts = store.counts()
    return {"status": "ok", "version": __version__, "queued": counts["queued"], "running": counts["running"]}


@router.get("/", include_in_schema=False)
def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")
