"""Request dependencies: the runtime, one session per request (writing, or reading only), and who is calling."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.auth import Principal, authenticate
from api.permissions import decide, rule
from config.errors import Unauthorized
from storage.db import reading, transaction
from storage.runtime import Runtime

_bearer = HTTPBearer(auto_error=False, description="An API token from `bwc token create`.")


async def get_runtime(request: Request) -> Runtime:
    # async: a plain attribute read, so FastAPI need not hop to a worker thread for it on every request
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _request_session(rt: RuntimeDep) -> Iterator[Session]:
    # The request owns its transaction: committed when the endpoint returns, before the response is sent,
    # rolled back when it raises. Services below only flush.
    with transaction(rt.sessions) as session:
        yield session


SessionDep = Annotated[Session, Depends(_request_session, scope="function")]


def _read_session(rt: RuntimeDep) -> Iterator[Session]:
    # A request that only reads: it neither waits for a writer (SQLite WAL, plain BEGIN) nor holds one up.
    with reading(rt.sessions) as session:
        yield session


ReadSessionDep = Annotated[Session, Depends(_read_session, scope="function")]


def resolve_principal(rt: Runtime, secret: str | None) -> Principal | None:
    """The holder of a secret, looked up in its own short transaction (never held open across a request)."""
    if not secret:
        return None
    with reading(rt.sessions) as session:
        return authenticate(session, secret)


def _admit(request: Request, principal: Principal | None, given: bool, capability: str) -> Principal:
    if principal is None:
        raise Unauthorized("a valid bearer token is required" if given else "no bearer token given")
    decide(principal, capability)
    request.state.principal = principal
    return principal


def require(capability: str) -> Callable[..., Principal]:
    """A dependency admitting a bearer token whose role may use ``capability`` (``api.permissions.RULES``).

    The dependency carries its capability (``.capability``) so that a test can walk the route table and
    prove every route has one; scope (units, grants) is then decided by ``audit.access`` in the route.
    The token is read in its own short transaction, so a route that writes or streams for long holds none
    open for it; a route that only reads uses ``require_reading`` instead.
    """
    rule(capability)  # an unknown capability fails at import, not at the first request

    def dependency(
        request: Request,
        rt: RuntimeDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> Principal:
        principal = resolve_principal(rt, credentials.credentials if credentials else None)
        return _admit(request, principal, credentials is not None, capability)

    dependency.__name__ = f"require_{capability.replace('.', '_')}"
    dependency.capability = capability  # type: ignore[attr-defined]
    return dependency


def require_reading(capability: str) -> Callable[..., Principal]:
    """``require`` for a route that only reads (``ReadSessionDep``): the token is read in the route's own
    reading session, so the request takes one connection and one transaction instead of two.

    FastAPI resolves ``ReadSessionDep`` once per request, so this dependency and the route share it. Still
    read afresh on every request: a revoked token or grant takes effect on the next one.
    """
    rule(capability)

    def dependency(
        request: Request,
        session: ReadSessionDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> Principal:
        principal = authenticate(session, credentials.credentials) if credentials and credentials.credentials else None
        return _admit(request, principal, credentials is not None, capability)

    dependency.__name__ = f"require_reading_{capability.replace('.', '_')}"
    dependency.capability = capability  # type: ignore[attr-defined]
    return dependency
