"""Request dependencies: the runtime, the writing session of a request, who is calling, and ``Reading``: the
caller and the reading session of a route that only reads (API routes and web pages alike)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Concatenate, NoReturn, ParamSpec, TypeVar

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.auth import Principal, authenticate
from api.permissions import decide, rule
from config.errors import Unauthorized
from storage.db import reading, transaction
from storage.runtime import Runtime

P = ParamSpec("P")
T = TypeVar("T")
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


def resolve_principal(rt: Runtime, secret: str | None) -> Principal | None:
    """The holder of a secret, looked up in its own short transaction (never held open across a request)."""
    if not secret:
        return None
    with reading(rt.sessions) as session:
        return authenticate(session, secret)


def _refuse(given: bool) -> NoReturn:
    raise Unauthorized("a valid bearer token is required" if given else "no bearer token given")


def _admit(request: Request, principal: Principal | None, given: bool, capability: str) -> Principal:
    if principal is None:
        _refuse(given)
    decide(principal, capability)
    request.state.principal = principal
    return principal


def require(capability: str) -> Callable[..., Principal]:
    """A dependency admitting a bearer token whose role may use ``capability`` (``api.permissions.RULES``).

    The dependency carries its capability (``.capability``) so that a test can walk the route table and
    prove every route has one; scope (units, grants) is then decided by ``audit.access`` in the route.
    The token is read in its own short transaction, so a route that writes or streams for long holds none
    open for it; a route that only reads uses ``require_reading`` instead (one hop to the thread pool, not four).
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


@dataclass(frozen=True)
class Reading:
    """A reading route's caller, not yet admitted: ``run`` admits it and does the route's work in ONE call on a
    worker thread.

    A sync route with a session dependency and a token dependency costs FastAPI four hops to the thread pool (the
    session's enter and its exit, the token, the route): on the case lookup they were a sixth of the service's
    time, and under load each hop is one more wait for the GIL and the event loop. ``run`` opens the reading
    session, admits the caller in it (``admit``) and only then calls the work with the session and the
    principal; scope stays the work's to decide through ``audit.access``, as everywhere.
    """

    request: Request
    runtime: Runtime
    secret: str
    capability: str

    def admit(self, session: Session) -> Principal:
        """The bearer token, then its role by ``api.permissions``: the same decision (``_admit``) as ``require``.

        Web pages override this with their session cookie (``api.routes.web_common.PageReading``)."""
        principal = authenticate(session, self.secret) if self.secret else None
        return _admit(self.request, principal, True, self.capability)

    async def run(self, work: Callable[Concatenate[Session, Principal, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        def admitted() -> T:
            with reading(self.runtime.sessions) as session:
                return work(session, self.admit(session), *args, **kwargs)

        return await run_in_threadpool(admitted)


def require_reading(capability: str) -> Callable[..., Awaitable[Reading]]:
    """``require`` for a route that only reads: the route is ``async`` and calls ``await reader.run(work, ...)``,
    which reads the token in the work's own reading session (one connection, one hop to the thread pool) and
    admits it before the work runs.

    Still read afresh on every request: a revoked token or grant takes effect on the next one. Without any
    bearer header the request is refused here at once (no thread, no connection), as ``require`` refuses it.
    """
    rule(capability)

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    ) -> Reading:
        # the runtime read here, as ``get_runtime`` reads it, rather than as a dependency of its own: one
        # dependency fewer for FastAPI to solve on every read request (the busiest routes)
        if credentials is None:
            _refuse(given=False)
        return Reading(request, request.app.state.runtime, credentials.credentials, capability)

    dependency.__name__ = f"require_reading_{capability.replace('.', '_')}"
    dependency.capability = capability  # type: ignore[attr-defined]
    return dependency
