"""Liveness for load balancers (no token) and Prometheus metrics (auditor)."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy.orm import Session

from api.auth import Principal
from api.deps import Reading, RuntimeDep, require_reading
from api.openapi_errors import GUARDED
from api.routes import API_PREFIX
from storage.db import ping

log = logging.getLogger(__name__)
router = APIRouter(prefix=API_PREFIX, tags=["service"])

# A digest that is never stored: asking the store about it proves the store answers.
PROBE_SHA256 = "0" * 64


@router.get("/healthz", summary="Database and object store reachable (no token needed)")
def healthz(rt: RuntimeDep) -> JSONResponse:
    checks: dict[str, Any] = {}
    try:
        ping(rt.engine)
        checks["database"] = "ok"
    except Exception as exc:  # health reports any failure instead of raising it
        log.warning("healthz: database unreachable: %s", exc)
        checks["database"] = "unreachable"
    try:
        rt.store.head(PROBE_SHA256)
        checks["store"] = "ok"
    except Exception as exc:
        log.warning("healthz: store unreachable: %s", exc)
        checks["store"] = "unreachable"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ok" if ok else "unavailable", **checks}, status_code=200 if ok else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}, **GUARDED},
)
async def metrics(request: Request, reader: Annotated[Reading, Depends(require_reading("metrics.read"))]) -> Response:
    return await reader.run(_metrics, request.app.state.metrics.registry)


def _metrics(_session: Session, _who: Principal, registry: CollectorRegistry) -> Response:
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
