"""``/api/me`` (any token) and ``/api/tokens`` (admin): make, list and revoke tokens."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from radsynth.errors import InvalidInput
from radsynth.serve.bodies import TokenRequest
from radsynth.serve.deps import Admin, Caller, SettingsDep, StoreDep
from radsynth.serve.uploads import discard_inputs

router = APIRouter(prefix="/api")


@router.get("/me")
def me(who: Caller) -> dict[str, Any]:
    return {"name": who.name, "scopes": list(who.scopes)}


@router.post("/tokens", status_code=201)
def new_token(body: TokenRequest, _: Admin, store: StoreDep) -> dict[str, Any]:
    try:
        made, secret = store.create_token(body.name, body.scopes)
    except ValueError as err:
        raise InvalidInput(str(err)) from None
    return {**made.to_dict(), "token": secret}


@router.get("/tokens")
def list_tokens(_: Admin, store: StoreDep) -> dict[str, Any]:
    return {"tokens": [t.to_dict() for t in store.tokens()]}


@router.delete("/tokens/{token_id}")
def revoke(token_id: str, _: Admin, store: StoreDep, settings: SettingsDep) -> dict[str, Any]:
    """The token stops working at once; its queued jobs are cancelled, running ones stop at
    their next progress report."""
    cancelled = store.revoke_token(token_id)
    if cancelled is None:
        raise HTTPException(404, f"no token {token_id}")
    for job_id in cancelled:
        discard_inputs(settings.jobs_dir / job_id)
    return {"revoked": token_id, "cancelled_jobs": cancelled}
