"""The FastAPI app: ``create_app(settings)`` serves the API under ``/api``, the PACS gate
under ``/gate`` (STOW-RS), ``/health`` and the web page at ``/``.

Thin by design: each route (``serve/routes/``, one router per resource) checks its token
and limits, then queues a job (long work) or calls the library (verify). Errors are one
line in ``{"detail": ...}`` with the status a client can act on: 401 token, 403 scope,
404, 409 conflict (a study image answered twice), 410 gone (a spent invitation), 413 size,
422 input, 429 busy, 503 PACS down.
"""

import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from radsynth import __version__
from radsynth.provenance.verify import AuditIndex
from radsynth.serve import gate_routes
from radsynth.serve.http_errors import BodyLimit, SecurityHeaders, install_error_handlers
from radsynth.serve.routes import jobs, models, page, study, tokens, verify, work
from radsynth.serve.settings import ServeSettings
from radsynth.serve.store import Store
from radsynth.serve.worker import Workers

log = logging.getLogger(__name__)


def create_app(settings: ServeSettings, start_workers: bool = True) -> FastAPI:
    """The service over ``settings.data_dir``; ``start_workers=False`` accepts jobs without
    running them (tests of the queue itself). Routes reach the store, the workers and the
    settings through ``app.state`` (``serve.deps``)."""
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
    app.add_middleware(SecurityHeaders)
    app.include_router(page.router)
    app.mount("/static", StaticFiles(directory=page.STATIC), name="static")
    for routes in (models, tokens, work, verify, jobs, study, gate_routes):
        app.include_router(routes.router)
    return app


def _import_workflows() -> None:
    """Import the workflows once, before any thread does: two threads importing pydicom at
    the same moment can see it half-initialised (a circular import inside pydicom)."""
    import pydicom.uid  # noqa: F401

    import radsynth.generate  # noqa: F401
    import radsynth.provenance.verify  # noqa: F401
    import radsynth.translate  # noqa: F401
