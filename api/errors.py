"""Every error leaves the API as SPEC §8's ``{"error": {"code", "message"}}``, rendered here and only here."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from config.errors import BwcError
from config.settings import Settings, mask_text
from storage.db import UNREACHABLE, database_unavailable

log = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    411: "length_required",
    413: "too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors():
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "request"
        parts.append(f"{where}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _mask(request: Request, text: str) -> str:
    settings = getattr(request.app.state, "settings", None)
    return settings.mask(text) if isinstance(settings, Settings) else mask_text(text)


async def _bwc_error(request: Request, exc: Exception) -> JSONResponse:
    # The status lives on the error's class (StoreUnavailable 503, DigestMismatch 422, ObjectMissing 404 …).
    assert isinstance(exc, BwcError)
    message = _mask(request, exc.message)
    if exc.status >= 500:
        log.error("%s on %s %s: %s", exc.code, request.method, request.url.path, message)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    retry_after = getattr(exc, "retry_after", None)  # back-pressure (ingest.upload_sessions.Busy): when to come back
    if retry_after is not None:
        headers = {"Retry-After": str(int(retry_after))}
    return error_response(exc.status, exc.code, message, headers)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    """The database went away mid-request: a 503 the client may retry, naming no password."""
    settings = getattr(request.app.state, "settings", None)
    url = settings.db_url if isinstance(settings, Settings) else ""
    return await _bwc_error(request, database_unavailable(exc, url))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "bad_input", _validation_message(exc))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_CODES.get(exc.status_code, "error" if exc.status_code < 500 else "internal")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, dict(exc.headers or {}))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Our bug: log it with its stack, tell the client nothing about the inside.
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal", "internal error; it has been logged")


def install_error_handlers(app: FastAPI) -> None:
    """Route every kind of failure to the one JSON error shape."""
    app.add_exception_handler(BwcError, _bwc_error)
    for unreachable in UNREACHABLE:
        app.add_exception_handler(unreachable, _database_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
