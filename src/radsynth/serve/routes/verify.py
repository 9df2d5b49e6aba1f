"""``POST /api/verify``: a verdict and its evidence for each uploaded file (zips expanded),
answered at once; files are named as uploaded, never by the server's paths."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile

from radsynth.serve.deps import SettingsDep, Verifier
from radsynth.serve.gate_routes import shared_detector
from radsynth.serve.paths import shown
from radsynth.serve.uploads import store_uploads

router = APIRouter(prefix="/api")


@router.post("/verify")
def verify(
    request: Request,
    _: Verifier,
    settings: SettingsDep,
    files: Annotated[list[UploadFile], File()],
    detector: Annotated[bool, Form()] = True,
) -> dict[str, Any]:
    from radsynth.provenance.verify import summarise, verify_file

    with tempfile.TemporaryDirectory(dir=settings.data_dir, prefix=".verify-") as tmp:
        root = Path(tmp)
        stored = store_uploads(files, root, settings.limits)
        use = shared_detector(request.app) if detector and settings.detector else None
        verdicts = []
        for path in stored:
            verdict = verify_file(
                path, detector=use, audit=request.app.state.audit, max_bytes=settings.limits.max_upload_bytes
            )
            name = path.relative_to(root).as_posix()
            flags = {"synthetic": verdict.synthetic, "suspect": verdict.suspect}  # proof, suspicion
            verdicts.append({**verdict.to_dict(), "file": name, **flags})
        verdicts = shown(verdicts, settings, {root.resolve(): ""})
    return {"verdicts": [{**v, "summary": summarise(v["evidence"])} for v in verdicts]}
