"""Running a plan (``radsynth.generate.plan``) into a dataset folder: the images, one
``manifest.jsonl`` in the corpus format and a dataset card, sharded over ``torchrun``
ranks and resumable after a kill at any point.

The folder::

    plan.json        the plan and its hash; a different plan pointed here is refused
    images/          000000.png ... (image i of the plan, seed fixed by the plan)
    .parts/          each rank's committed chunks (merged into the manifest at the end)
    .lock            held (flock) by rank 0 while a run writes: a second run is refused
    manifest.jsonl   one record per image written (split ``synthetic``)
    dataset.json     the card: plan, model cards, counts, privacy filter, time

Sharding: the images not yet committed are dealt out ``remaining[rank::world_size]``, so
ranks hold disjoint indices; image i's pixels depend only on i (its seed and prompt), not
on the rank or the batch (fp32: the same to float rounding; bf16 rounds per batch).

One manifest: ranks never share a file. Each chunk of images is committed by writing its
own part (``.parts/<first index>.json``) atomically; rank 0 merges the parts when every
rank is done. One audit log: the chain every ``radsynth generate`` appends to, under its
``flock`` (``radsynth.provenance.audit``), so ranks never interleave lines.

A chunk's steps, and what a kill after each leaves: (1) images written into a staging
folder (removed on the next start); (2) a pending note listing the chunk's files and
output ids; (3) the audit lines; (4) images moved into ``images/``; (5) the part; (6) the
note removed. On the next start rank 0 rolls back every note without a part: its files
deleted and its logged ids abandoned in the audit log (``abandon_outputs``), so the chunk
is drawn again under the same ids and no image is missing or counted twice.

Output ids are fixed by the plan and the index (``output_id``): the same plan gives the
same ids, so a rerun writes the same files whatever the number of processes.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from radsynth.data.manifest import Record, write_manifest
from radsynth.errors import InvalidInput
from radsynth.generate.models import load_pipeline, resolve_checkpoint
from radsynth.generate.outputs import check_output_folder, with_sidecar, write_marked
from radsynth.generate.plan import ImageSpec, Plan
from radsynth.io import Image, write_text_atomic
from radsynth.models.registry import read_card
from radsynth.provenance import append_entries, output_path
from radsynth.provenance.audit import abandon_outputs
from radsynth.text.prompt import parse_prompt
from radsynth.train.distributed import Runtime, start, stop

PLAN_FILE = "plan.json"
IMAGES = "images"
PARTS = ".parts"
MANIFEST = "manifest.jsonl"
CARD = "dataset.json"
SPLIT = "synthetic"
PENDING = "pending-"
LOCK = ".lock"
STAGING = ".staging-"
ROLLED_BACK = "interrupted before its chunk was committed; drawn again under the same id"
# errors of a folder that cannot take more bytes: a full disk, a quota, a read-only mount
FULL = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG, errno.EACCES, errno.EPERM}


@dataclass(frozen=True)
class RunOptions:
    """How to draw: generator ``kind``, ``device`` (None: CUDA when present; under torchrun
    each rank its local GPU), ``precision``, network ``batch_size``, ``distilled`` UNet,
    ``privacy_threshold`` (None: no privacy filter) and the ``audit_log`` (None: the
    default, ``radsynth.provenance.audit.default_log``)."""

    kind: str = "ldm"
    device: str | None = None
    precision: str = "auto"
    batch_size: int = 16
    distilled: bool = True
    privacy_threshold: float | None = None
    audit_log: Path | None = None


@dataclass(frozen=True)
class DatasetResult:
    """What rank 0 reports once the manifest is merged."""

    folder: Path
    total: int
    written: int
    dropped: int
    label_counts: dict[str, dict[str, int]]
    manifest: Path
    card: Path
    resumed: int  # images committed by earlier runs
    low_confidence: dict[str, list[str]]  # prompt -> terms the model never saw


def output_id(plan_sha: str, index: int) -> str:
    """Image ``index``'s output id (32 hex digits, like a fresh one): fixed by the plan."""
    return hashlib.sha256(f"{plan_sha}:{index}".encode()).hexdigest()[:32]


def run_plan(
    plan: Plan,
    folder: str | Path,
    options: RunOptions = RunOptions(),
    on_progress: Callable[[int, int], None] | None = None,
) -> DatasetResult | None:
    """Draw every image of ``plan`` not yet in ``folder`` and merge the manifest; rank 0
    returns the result, other ranks None. ``on_progress(done, total)`` (rank 0) counts the
    images committed by every rank. Under ``torchrun`` each rank calls this."""
    runtime = start(options.device)
    failed, lock = True, None
    try:
        folder = Path(folder)
        pipelines, low = _load(plan, options, runtime)  # a bad model, size or prompt: before any write
        if runtime.is_main:
            lock = _lock(check_output_folder(folder))
            _claim(folder, plan)
            _roll_back(folder, options.audit_log)
        _barrier(runtime)
        done = _committed(folder)
        remaining = [spec for spec in plan.images if spec.index not in done]
        mine = remaining[runtime.rank :: runtime.world_size]
        _draw(plan, folder, mine, pipelines, options, runtime, on_progress)
        _barrier(runtime)
        result = _finish(plan, folder, len(done), low, options.kind) if runtime.is_main else None
        failed = False
        return result
    finally:
        if lock is not None:
            lock.close()  # releases the flock
        stop(runtime, failed)


def _barrier(runtime: Runtime) -> None:
    """Wait for every rank; a rank that stopped (a refused folder, a full disk) has said why
    in its own line, so the others say one line too instead of gloo's traceback."""
    if runtime.distributed:
        import torch.distributed as dist

        try:
            dist.barrier()
        except RuntimeError:
            raise InvalidInput(f"rank {runtime.rank}: another rank stopped (its message says why)") from None


def _lock(folder: Path) -> IO[str]:
    """Rank 0's exclusive hold on the folder for the whole run: a second run started into
    it meanwhile (the same command typed twice, or workers a killed ``torchrun`` left
    behind: they run in sessions of their own) is refused instead of racing this one."""
    handle = None
    try:
        handle = open(folder / LOCK, "a")  # noqa: SIM115  (held open until the run ends)
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise InvalidInput(
            "another run is writing into this folder; wait for it or stop it first", folder
        ) from None
    except OSError as err:
        if handle is not None:
            handle.close()
        raise InvalidInput(f"cannot lock the dataset folder ({err.strerror})", folder) from None
    return handle


def _claim(folder: Path, plan: Plan) -> None:
    """Write ``plan.json`` into a new or empty folder; accept a folder that holds this same
    plan (a resume); refuse anything else in one line."""
    path = folder / PLAN_FILE
    if path.is_file():
        try:
            held = json.loads(path.read_text(encoding="utf-8")).get("sha256")
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
            raise InvalidInput("unreadable plan.json: not a dataset folder radsynth wrote", path) from None
        if held != plan.sha256:
            raise InvalidInput(
                f"this folder holds another plan (sha256 {str(held)[:12]}, this one {plan.sha256[:12]}); "
                "resume it with its own plan or choose another folder",
                folder,
            )
        return
    if any(p.name != LOCK for p in folder.iterdir()):
        raise InvalidInput("the folder is not empty and holds no plan.json; choose an empty folder", folder)
    _write(
        folder,
        lambda: write_text_atomic(
            path,
            json.dumps(
                {
                    "sha256": plan.sha256,
                    "source": plan.source,
                    "created": _now(),
                    "total": plan.total,
                    "settings": asdict(plan.settings),
                    "document": plan.document,
                },
                indent=2,
            ),
        ),
    )


def _roll_back(folder: Path, audit_log: Path | None) -> None:
    """Undo every chunk a kill left uncommitted (see the module docstring)."""
    parts = folder / PARTS
    for staging in folder.glob(f"{STAGING}*"):
        shutil.rmtree(staging, ignore_errors=True)
    if not parts.is_dir():
        return
    for note in sorted(parts.glob(f"{PENDING}*.json")):
        pending = json.loads(note.read_text(encoding="utf-8"))
        if not (parts / f"{pending['first']:07d}.json").is_file():
            for name in pending["files"]:
                (folder / IMAGES / name).unlink(missing_ok=True)
            abandon_outputs(pending["output_ids"], ROLLED_BACK, audit_log)
        note.unlink()


def _committed(folder: Path) -> dict[int, dict[str, Any]]:
    """Index -> entry of every committed image (written, or dropped by the privacy filter)."""
    out: dict[int, dict[str, Any]] = {}
    for part in _parts(folder):
        for entry in part["entries"]:
            if entry["index"] in out:
                raise InvalidInput(f"image {entry['index']} committed twice: the parts were edited", folder)
            out[entry["index"]] = entry
    return out


def _parts(folder: Path) -> Iterator[dict[str, Any]]:
    parts = folder / PARTS
    if parts.is_dir():
        for path in sorted(parts.glob("[0-9]*.json")):
            yield json.loads(path.read_text(encoding="utf-8"))


def _chunks(specs: list[ImageSpec], size: int) -> Iterator[list[ImageSpec]]:
    """Runs of at most ``size`` images that can share a batch (same model and sampler)."""
    chunk: list[ImageSpec] = []
    for spec in specs:
        if chunk and (len(chunk) == size or spec.batch_key != chunk[0].batch_key):
            yield chunk
            chunk = []
        chunk.append(spec)
    if chunk:
        yield chunk


def _load(plan: Plan, options: RunOptions, runtime: Runtime) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Each model of the plan loaded, and every prompt checked against what it learnt
    (refused out of its domain); returns the pipelines and the prompts with terms the
    model never saw."""
    pipelines, low = {}, {}
    for model in plan.models:
        pipelines[model] = load_pipeline(
            model,
            options.kind,
            device=runtime.device,
            precision=options.precision,
            batch_size=options.batch_size,
            distilled=options.distilled,
            size=plan.settings.size,
        )
        for prompt in dict.fromkeys(s.prompt for s in plan.images if s.model == model):
            pipelines[model].check_domain(prompt)
            unknown = pipelines[model].check_prompt(prompt)
            if unknown:
                low[prompt] = unknown
    return pipelines, low


def _draw(
    plan: Plan,
    folder: Path,
    mine: list[ImageSpec],
    pipelines: dict[str, Any],
    options: RunOptions,
    runtime: Runtime,
    on_progress: Callable[[int, int], None] | None,
) -> None:
    """Generate, filter and commit this rank's images chunk by chunk."""
    training = {}
    if options.privacy_threshold is not None:
        from radsynth.generate.privacy_filter import training_images

        training = {m: training_images(resolve_checkpoint(m, options.kind)) for m in pipelines}
    if runtime.is_main and on_progress is not None:
        on_progress(len(_committed(folder)), plan.total)
    for chunk in _chunks(mine, options.batch_size):
        started = time.perf_counter()
        first = chunk[0]
        images = pipelines[first.model].generate_each(
            [s.prompt for s in chunk], [s.seed for s in chunk], first.steps, first.guidance
        )
        sampled = time.perf_counter()
        dropped: dict[int, float] = {}
        if options.privacy_threshold is not None:
            from radsynth.generate.privacy_filter import near_copy_scores

            scores = near_copy_scores(images, training[first.model])
            dropped = {
                s.index: c for s, c in zip(chunk, scores, strict=True) if c > options.privacy_threshold
            }
        _commit(plan, folder, chunk, images, dropped, options, runtime, (started, sampled))
        if runtime.is_main and on_progress is not None:
            on_progress(len(_committed(folder)), plan.total)


def _commit(
    plan: Plan,
    folder: Path,
    chunk: list[ImageSpec],
    images: list[Image],
    dropped: dict[int, float],
    options: RunOptions,
    runtime: Runtime,
    times: tuple[float, float],
) -> None:
    """Write one chunk in the six steps of the module docstring."""
    fmt = plan.settings.format
    kept = [(s, im) for s, im in zip(chunk, images, strict=True) if s.index not in dropped]
    names = {s.index: output_path(folder / IMAGES, f"{s.index:06d}", fmt).name for s, _ in kept}
    ids = {s.index: output_id(plan.sha256, s.index) for s, _ in kept}
    parts = folder / PARTS
    note = parts / f"{PENDING}{runtime.rank}-{chunk[0].index:07d}.json"

    def write() -> None:
        (folder / IMAGES).mkdir(exist_ok=True)
        parts.mkdir(exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING, dir=folder))
        try:
            entries, logged = [], []
            for spec, image in kept:
                written = write_marked(image, staging / names[spec.index], fmt, output_id=ids[spec.index])
                files = with_sidecar(staging / written["file"], fmt)
                logged.append(
                    {
                        "output_id": written["output_id"],
                        "model_id": str(image.metadata.get("model_id") or ""),
                        "prompt": str(image.metadata.get("prompt", "")),
                        "files": files,
                    }
                )
                entries.append({"index": spec.index, "record": _record(spec, image, written, fmt).to_dict()})
            entries += [{"index": i, "dropped": round(c, 4)} for i, c in dropped.items()]
            moved = [p.name for item in logged for p in item["files"]]
            pending = {"first": chunk[0].index, "files": moved, "output_ids": list(ids.values())}
            write_text_atomic(note, json.dumps(pending))
            append_entries(logged, options.audit_log)
            for name in moved:
                os.replace(staging / name, folder / IMAGES / name)
            part = {
                "rank": runtime.rank,
                "world_size": runtime.world_size,
                "sampling_s": round(times[1] - times[0], 3),
                "writing_s": round(time.perf_counter() - times[1], 3),
                "entries": sorted(entries, key=lambda e: e["index"]),
            }
            write_text_atomic(parts / f"{chunk[0].index:07d}.json", json.dumps(part))
            note.unlink()
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    _write(folder, write, done=len(_committed(folder)), total=plan.total)


def _write(
    folder: Path, write: Callable[[], None], done: int | None = None, total: int | None = None
) -> None:
    """Run ``write``; a folder that takes no more bytes becomes one line saying how to go on."""
    try:
        write()
    except OSError as err:
        if err.errno not in FULL:
            raise
        where = "" if done is None else f" after {done:,} of {total:,} images"
        raise InvalidInput(
            f"cannot write in the dataset folder ({err.strerror}){where}; what is written is "
            "kept: free space and run the same command again to resume",
            folder,
        ) from None


def _record(spec: ImageSpec, image: Image, written: dict[str, Any], fmt: str) -> Record:
    """The image's manifest line: the corpus format, split ``synthetic``, labels from the plan."""
    model_id = str(image.metadata.get("model_id") or spec.model)
    asked = parse_prompt(spec.prompt)
    return Record(
        path=f"{IMAGES}/{written['file']}",
        text=str(image.metadata.get("prompt", spec.prompt)),
        modality=image.modality,
        subject=f"synthetic:{written['output_id']}",
        split=SPLIT,
        source=f"radsynth:{model_id}",
        licence=f"synthetic image by radsynth ({model_id}); the generator's training data terms: {CARD}",
        anatomy=asked.anatomy,
        labels=dict(spec.labels),
        spacing=tuple(float(s) for s in image.spacing),
        shape=tuple(int(s) for s in image.array.shape),
        extra={
            "model_id": model_id,
            "seed": spec.seed,
            "output_id": written["output_id"],
            "index": spec.index,
            "format": fmt,
        },
    )


def _finish(plan: Plan, folder: Path, resumed: int, low: dict[str, list[str]], kind: str) -> DatasetResult:
    """Merge the parts into ``manifest.jsonl`` (index order) and write the card."""
    done = _committed(folder)
    missing = [s.index for s in plan.images if s.index not in done]
    if missing:
        raise InvalidInput(f"{len(missing):,} image(s) of the plan are missing (first: {missing[0]})", folder)
    entries = [done[i] for i in sorted(done)]
    records = [Record.from_dict(e["record"]) for e in entries if "record" in e]
    dropped = [e for e in entries if "dropped" in e]
    counts: dict[str, dict[str, int]] = {}
    for record in records:
        for key, value in record.labels.items():
            bucket = counts.setdefault(key, {})
            bucket[str(value)] = bucket.get(str(value), 0) + 1
    counts = {k: dict(sorted(v.items())) for k, v in sorted(counts.items())}
    parts = list(_parts(folder))
    created = json.loads((folder / PLAN_FILE).read_text(encoding="utf-8"))["created"]
    card = {
        "synthetic": True,
        "plan": {"sha256": plan.sha256, "source": plan.source, "document": plan.document},
        "settings": asdict(plan.settings),
        "models": {m: _model_card(m, kind) for m in plan.models},
        "counts": {
            "planned": plan.total,
            "written": len(records),
            "labels": counts,
            "planned_labels": plan.label_counts(),
        },
        "privacy_filter": {
            "dropped": len(dropped),
            "images": [{"index": e["index"], "correlation": e["dropped"]} for e in dropped],
        },
        "low_confidence": low,
        "time": {
            "started": created,
            "finished": _now(),
            "sampling_s": round(sum(p["sampling_s"] for p in parts), 1),
            "writing_s": round(sum(p["writing_s"] for p in parts), 1),
            "world_sizes": sorted({p["world_size"] for p in parts}),
        },
        "manifest": MANIFEST,
    }

    def write() -> None:
        write_manifest(records, folder / MANIFEST)
        write_text_atomic(folder / CARD, json.dumps(card, indent=2, sort_keys=True))

    _write(folder, write)
    return DatasetResult(
        folder, plan.total, len(records), len(dropped), counts, folder / MANIFEST, folder / CARD, resumed, low
    )


def _model_card(model: str, kind: str) -> dict[str, Any]:
    """What a reader of the dataset needs from the generator's card: id, task, training
    steps and the data (with licences) it learnt from."""
    card = read_card(resolve_checkpoint(model, kind))
    return {
        "task": card.task,
        "model_id": card.model_id,
        "steps": card.steps,
        "data": card.data.to_dict() if card.data else None,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
