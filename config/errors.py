"""The service's error hierarchy: each error carries a stable code and an HTTP status.

The API renders these as ``{"error": {"code", "message"}}`` and the CLI exits 2 on them; anything else
is our bug (HTTP 500, CLI exit 3).
"""

from __future__ import annotations


class BwcError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class BadInput(BwcError):
    code = "bad_input"
    status = 422


class NotFound(BwcError):
    code = "not_found"
    status = 404


class Conflict(BwcError):
    code = "conflict"
    status = 409


class Unauthorized(BwcError):
    code = "unauthorized"
    status = 401


class Forbidden(BwcError):
    code = "forbidden"
    status = 403
