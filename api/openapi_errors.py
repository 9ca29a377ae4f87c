"""What every guarded API route may answer besides success, declared once for the OpenAPI document.

Errors are ``{"error": {"code", "message"}}`` (SPEC §8); the statuses below come from the one auth
dependency (401, 403 with ``forbidden`` or ``approval_required``), request validation (422), the NUL-byte
guard (400) and an unavailable database or store (503). Routes add their own (404, 409, 416 …) beside these.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorOut(BaseModel):
    """The one error shape of the API."""

    error: ErrorDetail


def error(description: str) -> dict[str, Any]:
    return {"model": ErrorOut, "description": description}


BASE: dict[int | str, dict[str, Any]] = {
    400: error("The request holds a NUL byte, or is malformed"),
    422: error("A parameter, header or body that is not accepted"),
    503: error("The database or the object store is unavailable; retry later"),
}
GUARDED: dict[int | str, dict[str, Any]] = {
    **BASE,
    401: error("No bearer token, or an unknown or revoked one"),
    404: error("No such recording, action, case, grant or audit event (routes that look one up)"),
    409: error("The state forbids it: integrity failed, object missing, not held, no checkpoint yet, revoked"),
    403: error(
        "The token's role may not do this (`forbidden`), or the evidence is outside its units and no "
        "grant covers it (`approval_required`)"
    ),
}
