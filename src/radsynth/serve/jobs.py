"""What each kind of job does, as one library call per kind (the service stays thin).

A runner gets a :class:`JobContext` and returns the job's results (JSON: URLs of the files it
wrote). It reports progress through ``ctx.progress(done, total)``, which raises
:class:`Cancelled` when a client asked to cancel, so a long job stops at its next report.
Runners write only inside the job's folder and rewrite it from scratch, so running a job a
second time (after a server restart) gives the same files.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from radsynth.errors import InvalidInput, PacsUnavailable
from radsynth.provenance.marking import FORMATS
from radsynth.serve.settings import ServeSettings
from radsynth.serve.store import Job, Store

if TYPE_CHECKING:  # the service starts without the plan reader (radsynth.data.cxr and all)
    from radsynth.generate.plan import Plan
    from radsynth.sampling.bounds import Bounds

log = logging.getLogger(__name__)

PREVIEW_HEIGHT = 256
CHUNK = 4  # images per progress report: image i keeps seed + i, so chunking changes no pixel


class Cancelled(Exception):
    """A client cancelled the job; it stops at its next progress report."""


class JobFailed(Exception):
    """A job that failed after writing something worth keeping (e.g. the PACS was down)."""

    def __init__(self, problem: str, results: dict[str, Any]) -> None:
        super().__init__(problem)
        self.results = results


class Pipelines:
    """Loaded generators by (weights, kind), shared by jobs: loading costs a second, a job
    of four images less."""

    def __init__(self, device: str | None = None) -> None:
        self._device = device
        self._loaded: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def get(self, weights: str, kind: str):
        from radsynth.generate import load_pipeline

        with self._lock:
            if (weights, kind) not in self._loaded:
                self._loaded[(weights, kind)] = load_pipeline(weights, kind, device=self._device)
            return self._loaded[(weights, kind)]


@dataclass
class JobContext:
    job: Job
    folder: Path
    settings: ServeSettings
    store: Store
    pipelines: Pipelines

    @property
    def params(self) -> dict[str, Any]:
        return self.job.params

    def progress(self, done: int, total: int) -> None:
        if self.store.progress(self.job.id, done, total):
            raise Cancelled()

    def url(self, path: Path) -> str:
        return f"/api/jobs/{self.job.id}/files/{path.relative_to(self.folder / 'out').as_posix()}"

    def file_entry(self, path: Path) -> dict[str, str]:
        return {"name": path.name, "url": self.url(path)}

    def pacs(self):
        from radsynth.serve.dicomweb import PacsClient

        if not self.settings.pacs:
            raise InvalidInput("this server has no PACS configured (radsynth serve --pacs URL)")
        return PacsClient(
            self.settings.pacs, retries=self.settings.pacs_retries, backoff=self.settings.pacs_backoff_s
        )


def run_generate(ctx: JobContext) -> dict[str, Any]:
    """The prompt's images, written in every format (the gallery offers each for download);
    or a plan's dataset."""
    from radsynth.generate import write_batch

    p = ctx.params
    if p.get("plan") is not None:
        return run_plan_job(ctx)
    pipeline = ctx.pipelines.get(p["weights"], p["model"])
    images: list = []
    ctx.progress(0, p["n"])
    while len(images) < p["n"]:
        count = min(CHUNK, p["n"] - len(images))
        images += pipeline.generate(
            p["prompt"],
            n=count,
            seed=p["seed"] + len(images),
            steps=p.get("steps"),
            guidance=p.get("guidance"),
        )
        ctx.progress(len(images), p["n"])
    out = ctx.folder / "out"
    batches = {
        fmt: write_batch(images, out / fmt, fmt, overwrite=True, audit_log=ctx.settings.audit_log)
        for fmt in FORMATS
    }
    results: dict[str, Any] = {
        "images": [
            {"index": i, "seed": p["seed"] + i, **{fmt: ctx.url(batches[fmt].files[i]) for fmt in FORMATS}}
            for i in range(len(images))
        ],
        "files": [ctx.file_entry(batches["png"].contact_sheet), ctx.file_entry(batches["png"].card)],
        "low_confidence": batches["png"].low_confidence,
        "unknown_terms": batches["png"].unknown_terms,
    }
    if p.get("pacs"):
        results["pacs"] = push_to_pacs(ctx, sorted((out / "dicom").glob("*.dcm")), results)
    return results


def request_plan(params: dict[str, Any], bounds: Bounds) -> Plan:
    """The plan of a generate request, read under the server's ``bounds`` (its total is
    the request's n; no confirmation lifts the cap); the request's weights, steps,
    guidance and seed fill what the plan leaves out; PNG unless it says otherwise."""
    from radsynth.generate.plan import Settings, plan_from_document

    defaults = Settings(params["weights"], params.get("steps"), params.get("guidance"), seed=params["seed"])
    return plan_from_document(params["plan"], defaults, yes=None, bounds=bounds)


def run_plan_job(ctx: JobContext) -> dict[str, Any]:
    """A plan's dataset in the job's folder. Run again after a crash, it starts from an
    empty folder like every job (the worker abandons what the attempt logged); the plan's
    output ids come back the same."""
    from radsynth.generate.dataset import RunOptions, run_plan

    p = ctx.params
    options = RunOptions(p["model"], ctx.settings.device, audit_log=ctx.settings.audit_log)
    plan = request_plan(p, ctx.settings.limits.bounds)
    result = run_plan(plan, ctx.folder / "out" / "dataset", options, on_progress=ctx.progress)
    records = [json.loads(line) for line in result.manifest.read_text(encoding="utf-8").splitlines()]
    return {
        "images": [
            {
                "index": r["extra"]["index"],
                "seed": r["extra"]["seed"],
                "png": ctx.url(result.folder / r["path"]),
            }
            for r in records
        ],
        "files": [ctx.file_entry(result.manifest), ctx.file_entry(result.card)],
        "counts": result.label_counts,
        "dropped": result.dropped,
        "low_confidence": bool(result.low_confidence),
        "unknown_terms": sorted({t for terms in result.low_confidence.values() for t in terms}),
    }


def push_to_pacs(ctx: JobContext, files: list[Path], results: dict[str, Any]) -> dict[str, Any]:
    """STOW the job's DICOM files; a PACS that stays down fails the job but keeps its files
    (``POST /api/jobs/{id}/push`` tries again)."""
    if not files:
        raise InvalidInput("nothing to push: the job wrote no DICOM files")
    try:
        return {"url": ctx.settings.pacs, **ctx.pacs().store(files)}
    except PacsUnavailable as err:
        raise JobFailed(f"{err}; the {len(files)} DICOM file(s) are kept, push again later", results) from err


def run_translate(ctx: JobContext) -> dict[str, Any]:
    """An uploaded (or PACS-pulled) volume translated with its geometry kept; a DICOM input
    gives a DICOM series (zipped for download), anything else NIfTI."""
    from radsynth.translate import translate_file

    p = ctx.params
    source = ctx.folder / p["input"] if p.get("input") else _pull(ctx, p["study_uid"])
    dicom = source.is_dir() or source.suffix.lower() == ".dcm"
    out = ctx.folder / "out"  # emptied by the worker before every run
    target = out / (f"{p['task']}-dicom" if dicom else f"{p['task']}.nii.gz")
    translate_file(
        source,
        target,
        p["task"],
        audit_log=ctx.settings.audit_log,
        on_slice=lambda done, total: ctx.progress(done, total),
    )
    files = [_zip_folder(target) if dicom else target]
    preview = write_preview(source, target, out / "preview.png")
    results: dict[str, Any] = {
        "files": [ctx.file_entry(f) for f in [*files, preview]],
        "preview": ctx.url(preview),
    }
    if p.get("pacs") and dicom:
        results["pacs"] = push_to_pacs(ctx, sorted(target.glob("*.dcm")), results)
    return results


def _pull(ctx: JobContext, study_uid: str) -> Path:
    folder = ctx.folder / "input"
    shutil.rmtree(folder, ignore_errors=True)
    files = ctx.pacs().download_study(study_uid, folder)
    if not files:
        raise InvalidInput(f"the PACS holds no instances of study {study_uid}")
    return folder


def _zip_folder(folder: Path) -> Path:
    archive = folder.with_suffix(".zip")
    tmp = archive.with_name(archive.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder.parent).as_posix())
    tmp.replace(archive)
    return archive


def write_preview(source: Path, translated: Path, path: Path) -> Path:
    """Middle slice before | after, each scaled to its own 1st-99th percentile, the
    translated half labelled SYNTHETIC in the pixels (a preview is a picture people share)."""
    from PIL import Image as PILImage
    from PIL import ImageDraw

    from radsynth.io import read_image

    halves = [_middle(read_image(source).array), _middle(read_image(translated).array)]
    height = max(PREVIEW_HEIGHT, *(h.shape[0] for h in halves))  # small slices scaled up to read
    tiles = [
        PILImage.fromarray(h).resize(
            (round(h.shape[1] * height / h.shape[0]), height), PILImage.Resampling.NEAREST
        )
        for h in halves
    ]
    sheet = PILImage.new("L", (sum(t.width for t in tiles) + 4, height), 0)
    sheet.paste(tiles[0], (0, 0))
    sheet.paste(tiles[1], (tiles[0].width + 4, 0))
    draw = ImageDraw.Draw(sheet)
    x = tiles[0].width + 8
    draw.rectangle((x, 4, x + 62, 16), fill=0)
    draw.text((x + 3, 5), "SYNTHETIC", fill=255)
    tmp = path.with_name(path.name + ".tmp")
    sheet.save(tmp, format="PNG")
    tmp.replace(path)
    return path


def _middle(array: np.ndarray) -> np.ndarray:
    plane = array[array.shape[0] // 2] if array.ndim == 3 else array
    lo, hi = np.percentile(plane, [1, 99])
    return (np.clip((plane - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)


def run_handout(ctx: JobContext) -> dict[str, Any]:
    """A patient handout from a report: findings, illustrative images, HTML + PDF."""
    from radsynth.education.handout import make_handout

    p = ctx.params
    handout = make_handout(
        p["report"],
        ctx.folder / "out",
        n_per_finding=p["n"],
        seed=p["seed"],
        steps=p.get("steps"),
        pipeline=ctx.pipelines.get(p["weights"], "ldm"),
        on_progress=lambda done, total: ctx.progress(done, total),
        audit_log=ctx.settings.audit_log,
    )
    return {
        "files": [ctx.file_entry(handout.html), ctx.file_entry(handout.pdf)],
        "html": ctx.url(handout.html),
        "pdf": ctx.url(handout.pdf),
    }


def evaluation_sources(ctx: JobContext) -> dict[str, Any]:
    """The job's three inputs resolved for its owner now, not when it was queued: a
    file swapped for a link since then is checked again (``paths.evaluation_source``)."""
    from radsynth.serve.paths import evaluation_source

    return {
        key: evaluation_source(ctx.params[key], key, ctx.settings, ctx.store, ctx.job.token_id)
        for key in ("real", "synthetic", "train")
    }


def run_evaluate(ctx: JobContext) -> dict[str, Any]:
    """The evaluation report of a synthetic set (a manifest or folder under a data root,
    or one of the caller's generate jobs) against real and training manifests; every file a
    manifest names must lie inside its input's confinement."""
    from radsynth.evaluate.features import DomainReader
    from radsynth.evaluate.report import write_report
    from radsynth.evaluate.run import EvaluationOptions, Models, evaluate
    from radsynth.evaluate.sets import load_set
    from radsynth.evaluate.utility import UtilitySettings
    from radsynth.models.registry import shipped

    p = ctx.params
    sources = evaluation_sources(ctx)
    splits = {"real": tuple(p["real_split"]), "synthetic": (), "train": tuple(p["train_split"])}
    sets = {
        key: load_set(source.path, key, splits[key], True, within=source.within)
        for key, source in sources.items()
    }
    models = Models(DomainReader(shipped("classifier")), DomainReader(shipped("encoder")))
    options = EvaluationOptions(
        seed=p["seed"],
        n_boot=p["bootstrap"],
        resample=True,
        radiomics=p["radiomics"],
        utility=UtilitySettings(steps=p["utility_steps"], seed=p["seed"]),
    )
    steps_seen: list[str] = []

    def progress(step: str, done: int, total: int) -> None:
        if step not in steps_seen:
            steps_seen.append(step)
        ctx.progress(len(steps_seen) - 1, len(steps_seen) + 1)  # steps appear as they start

    evaluation = evaluate(sets["real"], sets["synthetic"], sets["train"], models, options, progress)
    report, metrics = write_report(evaluation, ctx.folder / "out")
    return {"files": [ctx.file_entry(report), ctx.file_entry(metrics)], "report": ctx.url(report)}


RUNNERS: dict[str, Callable[[JobContext], dict[str, Any]]] = {
    "generate": run_generate,
    "translate": run_translate,
    "handout": run_handout,
    "evaluate": run_evaluate,
}
