"""Reader studies (``serve.study``): a reader (a ``study`` token listed for the study)
takes it image by image, then sees each label and its evidence; the study's owner (the
admin named at ``radsynth study create``) adds readers, sends one-time invitations and
reads the report. Another admin's study answers 404, as a missing one does."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse

from radsynth.serve.bodies import InvitationRequest, ReaderRequest, StudyAnswer
from radsynth.serve.deps import Admin, SettingsDep, StoreDep, token
from radsynth.serve.store import Token
from radsynth.serve.study import Studies, study_report

router = APIRouter(prefix="/api")
Reader = Annotated[Token, Depends(token("study"))]


def get_studies(store: StoreDep, settings: SettingsDep) -> Studies:
    return Studies(store, settings.data_dir)


StudiesDep = Annotated[Studies, Depends(get_studies)]


@router.get("/studies")
def studies(who: Reader, found: StudiesDep) -> dict[str, Any]:
    """The studies this token reads or owns, with its progress in each."""
    return {"studies": found.listed(who)}


@router.get("/studies/{study_id}/next")
def next_item(study_id: str, who: Reader, found: StudiesDep) -> dict[str, Any]:
    """The next image to answer: an opaque id and a position, nothing about its origin."""
    return found.next_item(study_id, who)


@router.get("/studies/{study_id}/images/{item_id}")
def image(study_id: str, item_id: str, who: Reader, found: StudiesDep) -> FileResponse:
    """Plain PNG pixels, never cached and never offered as a download with a name."""
    return FileResponse(
        found.image(study_id, item_id, who), media_type="image/png", headers={"Cache-Control": "no-store"}
    )


@router.post("/studies/{study_id}/answers", status_code=201)
def answer(study_id: str, body: StudyAnswer, who: Reader, found: StudiesDep) -> dict[str, Any]:
    found.answer(study_id, who, body.item, body.answer, body.confidence, body.response_ms)
    return found.next_item(study_id, who)


@router.get("/studies/{study_id}/reveal")
def reveal(study_id: str, who: Reader, found: StudiesDep) -> dict[str, Any]:
    """The labels and evidence, only once this reader has answered every image (409 before)."""
    return found.reveal(study_id, who)


@router.post("/studies/{study_id}/readers", status_code=201)
def add_reader(study_id: str, body: ReaderRequest, who: Admin, found: StudiesDep) -> dict[str, Any]:
    return {"study": study_id, "name": body.name, "token": found.add_reader(study_id, who, body.name)}


@router.post("/studies/{study_id}/invitations", status_code=201)
def invite(study_id: str, body: InvitationRequest, who: Admin, found: StudiesDep) -> dict[str, Any]:
    """A one-time link: opened, it makes a reader token for this study and then is spent."""
    code, expires = found.invite(study_id, who, body.hours)
    return {"study": study_id, "code": code, "link": f"/#invite={code}", "expires": expires}


@router.post("/invitations/{code}", status_code=201)
def accept(code: str, body: ReaderRequest, found: StudiesDep) -> dict[str, Any]:
    """No token needed: the invitation is the credential (404 unknown, 410 used or expired)."""
    study_id, secret = found.accept(code, body.name)
    return {"study": study_id, "token": secret}


@router.get("/studies/{study_id}/report")
def report(study_id: str, who: Admin, found: StudiesDep) -> dict[str, Any]:
    found.owned(study_id, who)
    return study_report(found, study_id)
