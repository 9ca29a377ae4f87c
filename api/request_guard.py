"""Refuse a NUL byte anywhere in a request's path, query string, headers or cookies, before any route runs.

PostgreSQL text cannot hold NUL (psycopg refuses it, a 500 if it got that far), C strings end at it, and no
file name, serial or case number contains one: it is always bad input, so it is a 400 here, in one place.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_response


def nul_in(scope: Scope) -> str | None:
    """Which part of the request carries a NUL byte (raw or percent-encoded), or None."""
    if "\x00" in scope.get("path", ""):
        return "path"
    query: bytes = scope.get("query_string", b"")
    if b"\x00" in query or b"%00" in query:
        return "query string"
    for name, value in scope.get("headers", ()):
        if b"\x00" in value or b"%00" in value:
            return f"header {name.decode('latin-1')}"
    return None


class RefuseNul:
    """ASGI middleware: a request with a NUL byte gets ``400 {"error": {"code": "nul_byte", …}}``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        where = nul_in(scope) if scope["type"] == "http" else None
        if where is None:
            await self.app(scope, receive, send)
            return
        response = error_response(400, "nul_byte", f"the request's {where} contains a NUL byte")
        await response(scope, receive, send)
