"""The PACS gate's HTTP face: STOW-RS at ``/gate/studies`` (verify every instance, forward
real ones, quarantine or tag proven synthetic ones, forward suspect ones with a note by
default), and the admin's view of the quarantine."""

import json
from typing import Any

from fastapi import APIRouter, Body, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from radsynth.serve.deps import Admin, SettingsDep, Verifier
from radsynth.serve.store import Token

router = APIRouter()


def shared_detector(app: FastAPI):
    """The shipped detector, loaded on first use and kept."""
    if getattr(app.state, "detector", None) is None:
        from radsynth.provenance.detector import SyntheticDetector

        app.state.detector = SyntheticDetector.load(None)
    return app.state.detector


def gate(request: Request):
    """The gate in front of ``--pacs``, made on first use and kept; 503 without a PACS."""
    app, settings = request.app, request.app.state.settings
    if not settings.pacs:
        raise HTTPException(503, "this server has no PACS behind its gate (radsynth serve --pacs URL)")
    if getattr(app.state, "gate", None) is None:
        from radsynth.serve.dicomweb import PacsClient
        from radsynth.serve.gate import Gate

        client = PacsClient(settings.pacs, retries=settings.pacs_retries, backoff=settings.pacs_backoff_s)
        app.state.gate = Gate(
            client,
            settings.gate_dir,
            policy=settings.gate_policy,
            suspect_policy=settings.gate_suspect_policy,
            detector=shared_detector(app) if settings.detector else None,
            audit=app.state.audit,
            max_bytes=settings.limits.max_upload_bytes,
        )
    return app.state.gate


async def stow(request: Request, who: Token) -> JSONResponse:
    """STOW-RS in front of the PACS: verify each instance, forward real ones, quarantine
    (or tag) synthetic ones."""
    from starlette.concurrency import run_in_threadpool

    from radsynth.serve.gate import parse_multipart_related

    body = await request.body()
    instances = parse_multipart_related(body, request.headers.get("content-type", ""))
    report = await run_in_threadpool(gate(request).receive, instances, who.name)
    return JSONResponse(
        report.stow_response(), status_code=report.status_code, media_type="application/dicom+json"
    )


@router.post("/gate/studies")
async def gate_studies(request: Request, who: Verifier) -> JSONResponse:
    return await stow(request, who)


@router.post("/gate/studies/{study_uid}")
async def gate_study(study_uid: str, request: Request, who: Verifier):
    return await stow(request, who)


@router.get("/api/gate/quarantine")
def quarantine(_: Admin, settings: SettingsDep) -> dict[str, Any]:
    folder = settings.gate_dir / "quarantine"
    items = [json.loads(p.read_text()) for p in sorted(folder.rglob("*.json"))] if folder.is_dir() else []
    return {"quarantined": items}


@router.post("/api/gate/release/{sop_uid}")
def release(sop_uid: str, request: Request, who: Admin, why: str = Body(embed=True)) -> dict[str, Any]:
    """Forward a quarantined instance a person judged real (a detector false positive)."""
    return gate(request).release(sop_uid, who.name, why)


@router.post("/api/gate/flush")
def flush(request: Request, _: Admin) -> dict[str, Any]:
    return {"forwarded": gate(request).flush_pending()}
