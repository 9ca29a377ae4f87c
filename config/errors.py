"""The service's one error root: each error carries a stable code, an HTTP status and a CLI exit code.

The API renders these as ``{"error": {"code", "message"}}`` with ``status``; the CLI prints one line and exits
with ``exit_code`` (2 bad usage or input, 1 a finding). Anything that is not a ``BwcError`` is our bug
(HTTP 500, CLI exit 3 with the traceback in a log file).
"""

from __future__ import annotations

EXIT_OK, EXIT_FINDING, EXIT_USAGE, EXIT_UNEXPECTED = 0, 1, 2, 3


class BwcError(Exception):
    """Root of every error the service expects; subclasses set ``code``, ``status`` and ``exit_code``."""

    code = "error"
    status = 400
    exit_code = EXIT_USAGE

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


class Finding(BwcError):
    """A check found something wrong with evidence (a failed verification): CLI exit 1, not bad input."""

    code = "finding"
    status = 409
    exit_code = EXIT_FINDING


class Unavailable(BwcError):
    """A service we depend on could not be reached; the caller may retry later."""

    code = "unavailable"
    status = 503


class DatabaseUnavailable(Unavailable):
    """The database could not be reached or opened; the message names it without its password."""

    code = "database_unavailable"
