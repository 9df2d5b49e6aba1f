"""Job threads: take the oldest queued job, run it, record how it ended.

The queue is the database, not memory: a worker that dies mid-job leaves the job ``running``
on disk, and the next start's ``Store.recover`` queues it again.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
from pathlib import Path

from radsynth.errors import RadsynthError
from radsynth.serve.jobs import RUNNERS, Cancelled, JobContext, JobFailed, Pipelines, evaluation_sources
from radsynth.serve.settings import ServeSettings
from radsynth.serve.store import Job, Store
from radsynth.serve.uploads import discard_inputs

log = logging.getLogger(__name__)
IDLE_POLL_S = 0.5


class Workers:
    """``settings.workers`` daemon threads over one store; ``wake()`` after a submit skips
    the idle poll."""

    def __init__(self, store: Store, settings: ServeSettings) -> None:
        self.store = store
        self.settings = settings
        self.pipelines = Pipelines(settings.device)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for i in range(self.settings.workers):
            thread = threading.Thread(target=self._loop, name=f"radsynth-worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 2.0) -> None:
        """Stop taking jobs. A job still running stays ``running`` on disk and is resumed by
        the next start, so a shutdown never waits minutes for a long job."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            job = self.store.claim()
            if job is None:
                self._wake.wait(IDLE_POLL_S)
                self._wake.clear()
                continue
            self.run(job)

    def run(self, job: Job) -> None:
        folder = self.settings.jobs_dir / job.id
        self._start_clean(job, folder / "out")
        ctx = JobContext(job, folder, self.settings, self.store, self.pipelines)
        try:
            results = RUNNERS[job.kind](ctx)
        except Cancelled:
            self.store.finish(job.id, "cancelled", error="cancelled by the client")
        except JobFailed as err:
            self.store.finish(job.id, "failed", results=err.results, error=self._shown(err, ctx))
        except RadsynthError as err:
            self.store.finish(job.id, "failed", error=self._shown(err, ctx))
        except Exception as err:  # a bug must fail its job, not the worker
            log.exception("job %s (%s) crashed", job.id, job.kind)
            problem = f"internal error: {type(err).__name__}: {err}"
            self.store.finish(job.id, "failed", error=self._shown(problem, ctx))
        else:
            self.store.finish(job.id, "done", results=results)
        finally:
            discard_inputs(folder)  # its outputs are what a job keeps; a failed upload goes too

    def _start_clean(self, job: Job, out: Path) -> None:
        """A rerun (after a crash) starts from an empty ``out/``; outputs of the interrupted
        attempt that reached the audit log, published or still in a staging folder, are
        recorded there as abandoned first, so the log matches the files that exist."""
        if out.exists():
            from radsynth.provenance.audit import abandon_outputs
            from radsynth.provenance.marking import read_marking

            ids = set()
            for path in (p for p in out.rglob("*") if p.is_file()):
                try:
                    ids.add(str((read_marking(path) or {}).get("output_id", "")))
                except Exception:  # a half-written file carries no id worth keeping
                    continue
            reason = f"job {job.id} interrupted; rerun from scratch (attempt {job.attempts})"
            abandon_outputs(ids - {""}, reason, self.settings.audit_log)
        shutil.rmtree(out, ignore_errors=True)

    def _shown(self, err: Exception | str, ctx: JobContext) -> str:
        """The error as the client may read it: the job's own folder as nothing, evaluation
        inputs as the client named them, no other server path."""
        from radsynth.serve.paths import shown

        known = {(ctx.folder / "out").resolve(): "", ctx.folder.resolve(): ""}
        if ctx.job.kind == "evaluate":
            with contextlib.suppress(RadsynthError):  # a refused input: its message names it as sent
                known |= {source.folder: source.shown for source in evaluation_sources(ctx).values()}
        return shown(str(err), self.settings, known)
