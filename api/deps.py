"""Request dependencies: the runtime, one session per request (writing, or reading only), and who is calling."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.auth import Principal, authenticate
from config.errors import Forbidden, Unauthorized
from storage.db import reading, transaction
from storage.runtime import Runtime

_bearer = HTTPBearer(auto_error=False, description="An API token from `bwc token create`.")


def get_runtime(request: Request) -> Runtime:
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


def require(*roles: str) -> Callable[..., Principal]:
    """A dependency admitting a bearer token of one of ``roles``; admin is always admitted."""
    allowed = frozenset(roles) | {"admin"}

    def dependency(
        request: Request,
        rt: RuntimeDep,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> Principal:
        principal = resolve_principal(rt, credentials.credentials if credentials else None)
        if principal is None:
            raise Unauthorized("a valid bearer token is required" if credentials else "no bearer token given")
        if principal.role not in allowed:
            raise Forbidden(f"role {principal.role!r} may not do this; needs {' or '.join(sorted(allowed))}")
        request.state.principal = principal
        return principal

    dependency.__name__ = f"require_{'_'.join(sorted(allowed))}"
    return dependency
