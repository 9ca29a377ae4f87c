"""The HTTP service: the API under ``/api/v1`` and the web pages at ``/`` (SPEC §8, §11)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api.arrival_hash import ArrivalHashes
from api.errors import install_error_handlers
from api.metrics import RequestMetrics, StoredTotals, make_metrics
from api.openapi_errors import BASE, GUARDED
from api.request_guard import RefuseNul
from api.routes import (
    API_PREFIX,
    access,
    actions,
    audit,
    cases,
    failures,
    health,
    links,
    recordings,
    reports,
    uploads,
    web,
)
from api.routes import findings as findings_routes
from config.settings import Settings, get_settings
from storage.runtime import build_runtime

log = logging.getLogger(__name__)


def include_api(app: FastAPI) -> None:
    """The API's routers, each included in the app itself: a router of routers was one more level that every
    request's route matching walked twice (FastAPI matches an included router, then again inside it), on the
    case lookup's path through five routers. The same routes in the same order, so the same OpenAPI."""
    app.include_router(health.router, responses=BASE)  # public but metrics: that route adds its own
    for module in (recordings, uploads, failures, actions, links, cases, reports, audit, access, findings_routes):
        app.include_router(module.router, responses=GUARDED)  # statuses every guarded route may answer


def create_app(settings: Settings | None = None) -> FastAPI:
    """A stateless app: everything it shares lives in the database and the object store."""
    settings = settings or get_settings()
    metrics = make_metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = build_runtime(settings)
        app.state.runtime = runtime
        collector = StoredTotals(runtime)
        metrics.registry.register(collector)
        log.info("api.started db=%s", runtime.engine.url.render_as_string(hide_password=True))
        try:
            yield
        finally:
            metrics.registry.unregister(collector)
            runtime.close()

    app = FastAPI(
        title="BWC Evidence",
        version="1",
        summary="Body-worn-camera evidence: verified ingest, content-addressed storage, coverage audit.",
        lifespan=lifespan,
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=f"{API_PREFIX}/docs/oauth2-redirect",
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.arrival_hashes = ArrivalHashes()  # this process's running digests of resumable uploads
    install_error_handlers(app)
    app.add_middleware(RequestMetrics, counter=metrics.requests)
    app.add_middleware(RefuseNul)  # outermost: a NUL byte never reaches a route (or the metrics' labels)
    include_api(app)
    app.include_router(web.router)
    return app
