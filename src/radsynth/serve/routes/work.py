"""The work a client queues: ``POST /api/generate``, ``/api/translate``, ``/api/handout``
and ``/api/evaluate``. Each checks its request now (a clear 422 beats a failed job after
a queue wait) and answers 202 with the job; a worker thread runs it."""

from __future__ import annotations

import shutil
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile

from radsynth.education.findings import positive_findings
from radsynth.education.plain_language import family_for
from radsynth.errors import InvalidInput
from radsynth.sampling.pipeline import KINDS
from radsynth.serve.bodies import EvaluateRequest, GenerateRequest, HandoutRequest
from radsynth.serve.deps import Generator, SettingsDep, StoreDep, WorkersDep, job_json, too_busy
from radsynth.serve.paths import evaluation_source
from radsynth.serve.store import Job, Token
from radsynth.serve.uploads import input_digest, store_input

# the translation tasks that take one volume (t1t2-flair takes two: the CLI's --input);
# written out so this module does not import torch (tests hold it to radsynth.translate.TASKS)
TASKS = ("denoise", "sr2", "sr4", "mr2ct", "t1pd", "mr2ct-atlas", "t1-t2", "t2-flair", "t1-flair")
router = APIRouter(prefix="/api")


class Queue:
    """A dependency: the job queue as one request sees it (its Idempotency-Key header)."""

    def __init__(self, request: Request, settings: SettingsDep, store: StoreDep, workers: WorkersDep):
        self.key = request.headers.get("idempotency-key")
        self.settings, self.store, self.workers = settings, store, workers

    def busy(self, who: Token) -> None:
        """429 before an upload is stored, so a busy client does not send 200 MB for nothing."""
        if self.store.active(who.id) >= self.settings.limits.jobs_per_token:
            raise too_busy(self.settings)

    def submit(
        self, who: Token, kind: str, params: dict[str, Any], total: int = 0, job_id: str | None = None
    ) -> Job:
        """Queue the job (the same one again for a repeated Idempotency-Key) and wake a
        worker; 429 when the token already has its limit of active jobs."""
        if self.key is not None and not 1 <= len(self.key) <= 200:
            raise InvalidInput("Idempotency-Key must be 1..200 characters")
        limit = self.settings.limits.jobs_per_token
        job = self.store.submit(who.id, kind, params, total, limit, job_id=job_id, key=self.key)
        if job is None:
            raise too_busy(self.settings)
        self.workers.wake()
        return job


QueueDep = Annotated[Queue, Depends(Queue)]


def check_model(weights: str, kind: str) -> None:
    """Only shipped models by name: a client must never make the server load a path."""
    from radsynth.generate import list_models

    if kind not in KINDS:
        raise InvalidInput(f"unknown model {kind!r}; choose one of {', '.join(KINDS)}")
    if not any(m.name == weights and m.kind == kind for m in list_models()):
        names = ", ".join(sorted({m.name for m in list_models()}))
        raise InvalidInput(f"no shipped {kind} model named {weights!r} (shipped: {names})")


@router.post("/generate", status_code=202)
def generate(body: GenerateRequest, who: Generator, settings: SettingsDep, queue: QueueDep) -> dict[str, Any]:
    if (body.prompt is None) == (body.plan is None):
        raise InvalidInput("send a prompt or a plan, one of them")
    if body.plan is not None:
        return generate_plan(body, who, settings, queue)
    prompt = settings.limits.bounds.check(body.prompt, body.n, body.steps, body.guidance)
    check_model(body.weights, body.model)
    if body.pacs and not settings.pacs:
        raise InvalidInput("this server has no PACS configured (radsynth serve --pacs URL)")
    return job_json(queue.submit(who, "generate", {**body.model_dump(), "prompt": prompt}, total=body.n))


def generate_plan(body: GenerateRequest, who: Token, settings: SettingsDep, queue: Queue) -> dict[str, Any]:
    """A dataset job: the plan read under this server's limits (its total counted as n),
    every model it names shipped; the job writes images, manifest.jsonl and dataset.json."""
    from radsynth.serve.jobs import request_plan

    if "n" in body.model_fields_set:
        raise InvalidInput("n does not go with a plan: the plan states its counts")
    if body.pacs:
        raise InvalidInput("a plan makes a dataset, not a study to push: pacs is for prompt jobs")
    plan = request_plan(body.model_dump(), settings.limits.bounds)
    for weights in plan.models:
        check_model(weights, body.model)
    return job_json(
        queue.submit(who, "generate", {**body.model_dump(), "plan": plan.document}, total=plan.total)
    )


@router.post("/translate", status_code=202)
def translate(
    who: Generator,
    settings: SettingsDep,
    queue: QueueDep,
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
    queue.busy(who)
    job_id = uuid.uuid4().hex
    params: dict[str, Any] = {"task": task, "pacs": pacs}
    if study_uid is not None:
        params["study_uid"] = study_uid
    else:
        params["input"] = store_input(file, settings.jobs_dir / job_id, settings.limits)
        params["input_sha256"] = input_digest(settings.jobs_dir / job_id)  # the Idempotency-Key's body
    try:
        job = queue.submit(who, "translate", params, job_id=job_id)
    except BaseException:
        shutil.rmtree(settings.jobs_dir / job_id, ignore_errors=True)
        raise
    if job.id != job_id:  # a repeated Idempotency-Key: the first upload is the job's
        shutil.rmtree(settings.jobs_dir / job_id, ignore_errors=True)
    return job_json(job)


@router.post("/handout", status_code=202)
def handout(body: HandoutRequest, who: Generator, settings: SettingsDep, queue: QueueDep) -> dict[str, Any]:
    limit = settings.limits.max_report_chars
    if not body.report.strip():
        raise InvalidInput("report is empty: paste the radiology report")
    if len(body.report) > limit:
        raise InvalidInput(f"report has {len(body.report)} characters; the limit is {limit}")
    settings.limits.bounds.check_sampling(body.steps, None)
    findings = positive_findings(body.report)  # a normal report fails now, not after a queue wait
    if not 1 <= body.n <= 4:
        raise InvalidInput(f"n must be in 1..4 images per finding, got {body.n}")
    params = body.model_dump()
    params["weights"] = body.weights or family_for(findings)  # the job records which family drew
    check_model(params["weights"], "ldm")
    return job_json(queue.submit(who, "handout", params))


@router.post("/evaluate", status_code=202)
def evaluate(
    body: EvaluateRequest, who: Generator, settings: SettingsDep, store: StoreDep, queue: QueueDep
) -> dict[str, Any]:
    """Checked now for a clear 422; the worker resolves the same inputs again before it
    reads (one rule, ``evaluation_source``), so the job keeps what the caller sent."""
    params = body.model_dump()
    for key in ("real", "synthetic", "train"):
        evaluation_source(params[key], key, settings, store, who)
    return job_json(queue.submit(who, "evaluate", params))
