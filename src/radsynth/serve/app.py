"""The FastAPI app: ``create_app(settings)`` serves the API under ``/api``, the PACS gate
under ``/gate`` (STOW-RS), ``/health`` and the web page at ``/``.

Thin by design: each route checks its token and limits, then queues a job (long work) or
calls the library (verify). Errors are one line in ``{"detail": ...}`` with the status a
client can act on: 401 token, 403 scope, 404, 413 size, 422 input, 429 busy, 503 PACS down.
"""

import logging
import shutil
import tempfile
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from radsynth import __version__
from radsynth.errors import InvalidInput, PacsUnavailable
from radsynth.generate.findings import positive_findings
from radsynth.provenance.verify import AuditIndex
from radsynth.serve.gate_routes import add_gate_routes, shared_detector
from radsynth.serve.http_errors import BodyLimit, install_error_handlers
from radsynth.serve.settings import ServeSettings
from radsynth.serve.store import Job, Store, Token
from radsynth.serve.uploads import store_input, store_uploads
from radsynth.serve.worker import Workers

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
TASKS = ("denoise", "sr2", "sr4", "mr2ct", "t1pd")
KINDS = ("ldm", "gan", "vae")


class GenerateRequest(BaseModel):
    prompt: str
    n: int = 4
    model: str = "ldm"
    weights: str = "demo-ct-mr-64"
    steps: int | None = None
    guidance: float | None = None
    seed: int = Field(0, ge=0, le=2**31 - 1)
    pacs: bool = False


class HandoutRequest(BaseModel):
    report: str
    n: int = 1
    seed: int = Field(0, ge=0, le=2**31 - 1)
    steps: int | None = None
    weights: str = "demo-ct-mr-64"


class EvaluateRequest(BaseModel):
    real: str
    synthetic: str
    train: str
    real_split: list[str] = []
    train_split: list[str] = []
    radiomics: bool = True
    bootstrap: int = Field(100, ge=1, le=1000)
    utility_steps: int = Field(300, ge=1, le=5000)
    seed: int = 0


class TokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str]


def create_app(settings: ServeSettings, start_workers: bool = True) -> FastAPI:
    """The service over ``settings.data_dir``; ``start_workers=False`` accepts jobs without
    running them (tests of the queue itself)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.database)
    workers = Workers(store, settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        requeued, failed = store.recover()
        if requeued or failed:
            log.warning("recovered after restart: %d job(s) queued again, %d failed", requeued, failed)
        _import_workflows()
        if start_workers:
            workers.start()
        yield
        workers.stop()
        store.close()

    app = FastAPI(
        title="radsynth",
        version=__version__,
        description="Synthetic medical images: generate, translate, verify, evaluate; all marked synthetic.",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI and ReDoc load their scripts from a CDN: not on a closed network
        redoc_url=None,
    )
    app.state.settings, app.state.store, app.state.workers = settings, store, workers
    app.state.audit = AuditIndex(settings.audit_log)  # shared by verify and the gate; follows the log
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.limits.max_upload_bytes)

    def token(scope: str | None = None):
        def check(request: Request) -> Token:
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

    def submit(
        request: Request,
        who: Token,
        kind: str,
        params: dict[str, Any],
        total: int = 0,
        job_id: str | None = None,
    ) -> Job:
        key = request.headers.get("idempotency-key")
        if key is not None and not 1 <= len(key) <= 200:
            raise InvalidInput("Idempotency-Key must be 1..200 characters")
        job = store.submit(
            who.id, kind, params, total, settings.limits.jobs_per_token, job_id=job_id, key=key
        )
        if job is None:
            raise _too_busy(settings)
        workers.wake()
        return job

    def busy(who: Token) -> None:
        """429 before an upload is stored, so a busy client does not send 200 MB for nothing."""
        if store.active(who.id) >= settings.limits.jobs_per_token:
            raise _too_busy(settings)

    def owned(job_id: str, who: Token) -> Job:
        job = store.job(job_id)
        if job is None or (job.token_id != who.id and "admin" not in who.scopes):
            raise HTTPException(404, f"no job {job_id}")
        return job

    @app.get("/health")
    def health() -> dict[str, Any]:
        counts = store.counts()
        return {
            "status": "ok",
            "version": __version__,
            "queued": counts["queued"],
            "running": counts["running"],
        }

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/me")
    def me(who: Annotated[Token, Depends(token())]) -> dict[str, Any]:
        return {"name": who.name, "scopes": list(who.scopes)}

    @app.get("/api/models")
    def models(_: Annotated[Token, Depends(token())]) -> dict[str, Any]:
        from radsynth.generate import list_models
        from radsynth.sampling import SamplingDefaults

        out = []
        for shipped in list_models():
            card = shipped.card().to_dict()
            defaults = SamplingDefaults(**((card.get("task_info") or {}).get("sampling") or {}))
            ldm = shipped.kind == "ldm"
            out.append(
                {
                    "name": shipped.name,
                    "kind": shipped.kind,
                    "model_id": card.get("model_id"),
                    "steps": defaults.steps if ldm else None,
                    "guidance": defaults.guidance if ldm else None,
                    "card": card,
                }
            )
        return {"models": out}

    @app.post("/api/generate", status_code=202)
    def generate(
        body: GenerateRequest, request: Request, who: Annotated[Token, Depends(token("generate"))]
    ) -> dict[str, Any]:
        limits = settings.limits
        prompt = body.prompt.strip()
        if not prompt:
            raise InvalidInput("prompt is empty: describe the image to generate")
        if len(prompt) > limits.max_prompt_chars:
            raise InvalidInput(f"prompt has {len(prompt)} characters; the limit is {limits.max_prompt_chars}")
        if not 1 <= body.n <= limits.max_n:
            raise InvalidInput(f"n must be in 1..{limits.max_n}, got {body.n}")
        if body.steps is not None and not 1 <= body.steps <= limits.max_steps:
            raise InvalidInput(f"steps must be in 1..{limits.max_steps}, got {body.steps}")
        if body.guidance is not None and not 0 <= body.guidance <= 30:
            raise InvalidInput(f"guidance must be in 0..30, got {body.guidance}")
        _check_model(body.weights, body.model)
        if body.pacs and not settings.pacs:
            raise InvalidInput("this server has no PACS configured (radsynth serve --pacs URL)")
        return _job_json(
            submit(request, who, "generate", {**body.model_dump(), "prompt": prompt}, total=body.n)
        )

    @app.post("/api/translate", status_code=202)
    def translate(
        request: Request,
        who: Annotated[Token, Depends(token("generate"))],
        task: Annotated[str, Form()],
        file: Annotated[UploadFile | None, File()] = None,
        study_uid: Annotated[str | None, Form()] = None,
        pacs: Annotated[bool, Form()] = False,
    ) -> dict[str, Any]:
        if task not in TASKS:
            raise InvalidInput(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
        if (file is None) == (study_uid is None):
            raise InvalidInput("send either a file or a study_uid to pull from the PACS")
        if (study_uid or pacs) and not settings.pacs:
            raise InvalidInput("this server has no PACS configured (radsynth serve --pacs URL)")
        busy(who)
        job_id = uuid.uuid4().hex
        params: dict[str, Any] = {"task": task, "pacs": pacs}
        if study_uid is not None:
            params["study_uid"] = study_uid
        else:
            params["input"] = store_input(file, settings.jobs_dir / job_id, settings.limits)
        try:
            job = submit(request, who, "translate", params, job_id=job_id)
        except BaseException:
            shutil.rmtree(settings.jobs_dir / job_id, ignore_errors=True)
            raise
        if job.id != job_id:  # a repeated Idempotency-Key: the first upload is the job's
            shutil.rmtree(settings.jobs_dir / job_id, ignore_errors=True)
        return _job_json(job)

    @app.post("/api/handout", status_code=202)
    def handout(
        body: HandoutRequest, request: Request, who: Annotated[Token, Depends(token("generate"))]
    ) -> dict[str, Any]:
        if not body.report.strip():
            raise InvalidInput("report is empty: paste the radiology report")
        if len(body.report) > settings.limits.max_report_chars:
            raise InvalidInput(
                f"report has {len(body.report)} characters; the limit is {settings.limits.max_report_chars}"
            )
        if body.steps is not None and not 1 <= body.steps <= settings.limits.max_steps:
            raise InvalidInput(f"steps must be in 1..{settings.limits.max_steps}, got {body.steps}")
        positive_findings(body.report)  # a normal report fails now, not after a queue wait
        if not 1 <= body.n <= 4:
            raise InvalidInput(f"n must be in 1..4 images per finding, got {body.n}")
        _check_model(body.weights, "ldm")
        return _job_json(submit(request, who, "handout", body.model_dump()))

    @app.post("/api/evaluate", status_code=202)
    def evaluate(
        body: EvaluateRequest, request: Request, who: Annotated[Token, Depends(token("generate"))]
    ) -> dict[str, Any]:
        params = body.model_dump()
        for key in ("real", "synthetic", "train"):
            value = params[key]
            if value.startswith("job:"):  # another job's images, e.g. a generate job of this token
                source = owned(value[4:], who)
                if source.kind != "generate" or source.state != "done":
                    raise InvalidInput(f"{key}: job {source.id} is not a finished generate job")
                value = str(settings.jobs_dir / source.id / "out" / "png")
            params[key] = _readable(settings, value, key)
        return _job_json(submit(request, who, "evaluate", params))

    @app.post("/api/verify")
    def verify(
        _: Annotated[Token, Depends(token("verify"))],
        files: Annotated[list[UploadFile], File()],
        detector: Annotated[bool, Form()] = True,
    ) -> dict[str, Any]:
        from radsynth.provenance.verify import summarise

        with tempfile.TemporaryDirectory(dir=settings.data_dir, prefix=".verify-") as tmp:
            stored = store_uploads(files, Path(tmp), settings.limits)
            verdicts = _verdicts(app, stored, Path(tmp), detector)
        return {"verdicts": [{**v, "summary": summarise(v["evidence"])} for v in verdicts]}

    @app.get("/api/jobs")
    def jobs(
        who: Annotated[Token, Depends(token())], limit: int = Query(100, ge=1, le=1000)
    ) -> dict[str, Any]:
        """This token's jobs (an admin's: everyone's), newest first."""
        owner = None if "admin" in who.scopes else who.id
        return {"jobs": [_job_json(j) for j in store.jobs(owner, limit=limit)]}

    @app.get("/api/jobs/{job_id}")
    def job(job_id: str, who: Annotated[Token, Depends(token())]) -> dict[str, Any]:
        return _job_json(owned(job_id, who))

    @app.post("/api/jobs/{job_id}/cancel")
    def cancel(job_id: str, who: Annotated[Token, Depends(token())]) -> dict[str, Any]:
        owned(job_id, who)
        return _job_json(store.cancel(job_id))

    @app.post("/api/jobs/{job_id}/push")
    def push(job_id: str, who: Annotated[Token, Depends(token("generate"))]) -> dict[str, Any]:
        """Push a finished job's DICOM files to the PACS again (after it was down)."""
        from radsynth.serve.jobs import JobFailed, push_to_pacs

        found = owned(job_id, who)
        if found.state not in ("done", "failed") or not found.results:
            raise InvalidInput(f"job {job_id} has no results to push (state {found.state})")
        ctx = _context(found)
        files = sorted((ctx.folder / "out").rglob("*.dcm"))
        try:
            pushed = push_to_pacs(ctx, files, found.results)
        except JobFailed as err:
            raise PacsUnavailable(str(err)) from err
        results = {**found.results, "pacs": pushed}
        store.finish(job_id, "done", results=results)
        return _job_json(store.job(job_id))

    @app.get("/api/jobs/{job_id}/files/{path:path}")
    def job_file(job_id: str, path: str, who: Annotated[Token, Depends(token())]) -> FileResponse:
        owned(job_id, who)
        root = (settings.jobs_dir / job_id / "out").resolve()
        target = (root / path).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            raise HTTPException(404, f"no file {path} in job {job_id}")
        return FileResponse(target, filename=target.name)

    @app.post("/api/tokens", status_code=201)
    def new_token(body: TokenRequest, _: Annotated[Token, Depends(token("admin"))]) -> dict[str, Any]:
        try:
            made, secret = store.create_token(body.name, body.scopes)
        except ValueError as err:
            raise InvalidInput(str(err)) from None
        return {**made.to_dict(), "token": secret}

    @app.get("/api/tokens")
    def list_tokens(_: Annotated[Token, Depends(token("admin"))]) -> dict[str, Any]:
        return {"tokens": [t.to_dict() for t in store.tokens()]}

    @app.delete("/api/tokens/{token_id}")
    def revoke(token_id: str, _: Annotated[Token, Depends(token("admin"))]) -> dict[str, Any]:
        if not store.revoke_token(token_id):
            raise HTTPException(404, f"no token {token_id}")
        return {"revoked": token_id}

    def _context(found: Job):
        from radsynth.serve.jobs import JobContext

        return JobContext(found, settings.jobs_dir / found.id, settings, store, workers.pipelines)

    add_gate_routes(app, settings, token("verify"), token("admin"))
    return app


def _import_workflows() -> None:
    """Import the workflows once, before any thread does: two threads importing pydicom at
    the same moment can see it half-initialised (a circular import inside pydicom)."""
    import pydicom.uid  # noqa: F401

    import radsynth.generate  # noqa: F401
    import radsynth.provenance.verify  # noqa: F401
    import radsynth.translate  # noqa: F401


def _too_busy(settings: ServeSettings) -> HTTPException:
    return HTTPException(
        429,
        f"this token already has {settings.limits.jobs_per_token} queued or running jobs; retry later",
        headers={"Retry-After": str(settings.limits.retry_after_s)},
    )


def _check_model(weights: str, kind: str) -> None:
    """Only shipped models by name: a client must never make the server load a path."""
    from radsynth.generate import list_models

    if kind not in KINDS:
        raise InvalidInput(f"unknown model {kind!r}; choose one of {', '.join(KINDS)}")
    if not any(m.name == weights and m.kind == kind for m in list_models()):
        names = ", ".join(sorted({m.name for m in list_models()}))
        raise InvalidInput(f"no shipped {kind} model named {weights!r} (shipped: {names})")


def _readable(settings: ServeSettings, path: str, what: str) -> str:
    """``path`` (relative: to the data folder) resolved, if it lies inside the data folder
    or one of ``settings.data_roots``; anything else (``../``, links out) is refused."""
    target = (settings.data_dir / path).resolve()
    roots = [settings.data_dir.resolve(), *(Path(r).resolve() for r in settings.data_roots)]
    if not any(target.is_relative_to(root) for root in roots) or not target.exists():
        raise InvalidInput(f"{what} must name a file or folder in the server's data folders, got {path!r}")
    return str(target)


def _verdicts(app: FastAPI, files: list[Path], root: Path, use_detector: bool) -> list[dict[str, Any]]:
    from radsynth.provenance.verify import verify_file

    settings: ServeSettings = app.state.settings
    detector = shared_detector(app) if use_detector and settings.detector else None
    audit = app.state.audit
    out = []
    for path in files:
        verdict = verify_file(
            path, detector=detector, audit=audit, max_bytes=settings.limits.max_upload_bytes
        )
        out.append(
            {**verdict.to_dict(), "file": path.relative_to(root).as_posix(), "synthetic": verdict.synthetic}
        )
    return out


def _job_json(job: Job) -> dict[str, Any]:
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
