"""Job threads: take the oldest queued job, run it, record how it ended.

The queue is the database, not memory: a worker that dies mid-job leaves the job ``running``
on disk, and the next start's ``Store.recover`` queues it again.
"""

from __future__ import annotations

import logging
import shutil
import threading

from radsynth.errors import RadsynthError
from radsynth.serve.jobs import RUNNERS, Cancelled, JobContext, JobFailed, Pipelines
from radsynth.serve.settings import ServeSettings
from radsynth.serve.store import Job, Store

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
        shutil.rmtree(folder / "out", ignore_errors=True)  # a rerun starts clean
        ctx = JobContext(job, folder, self.settings, self.store, self.pipelines)
        try:
            results = RUNNERS[job.kind](ctx)
        except Cancelled:
            self.store.finish(job.id, "cancelled", error="cancelled by the client")
        except JobFailed as err:
            self.store.finish(job.id, "failed", results=err.results, error=str(err))
        except RadsynthError as err:
            self.store.finish(job.id, "failed", error=str(err))
        except Exception as err:  # a bug must fail its job, not the worker
            log.exception("job %s (%s) crashed", job.id, job.kind)
            self.store.finish(job.id, "failed", error=f"internal error: {type(err).__name__}: {err}")
        else:
            self.store.finish(job.id, "done", results=results)
