"""The route table, walked: every route names a capability of the one permission table, the table says what
``test_auth``'s access tables say, and every scoped route keeps another unit's evidence from a reviewer.

A new route without ``require(capability)`` (API) or an entry in ``PAGES`` (web) fails here.
"""

from __future__ import annotations

import inspect
from typing import Any, get_type_hints

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from api.app import create_app
from api.deps import Reading
from api.permissions import PAGES, RULES
from audit.findings import open_by_hand
from config.settings import Settings
from storage.basics import utcnow
from storage.db import transaction
from storage.runtime import Runtime
from tests.api.test_auth import API_ACCESS, PUBLIC, WEB_ACCESS
from tests.api.test_scope import Scene
from tests.api.test_scope import scene as scene
from tests.api.web_client import signed_in


def _api_routes() -> list[tuple[str, set[str], APIRoute]]:
    """(full path, methods, route) of every route the app serves, included routers' too."""
    app = create_app(Settings(home="/nonexistent-bwc-home"))
    found = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        if isinstance(route, APIRoute):
            found.append((str(ctx.path), set(ctx.methods or ()), route))
    return found


def _capabilities(dependant: Dependant) -> set[str]:
    found: set[str] = set()
    for dep in dependant.dependencies:
        cap = getattr(dep.call, "capability", None)
        if isinstance(cap, str):
            found.add(cap)
        found |= _capabilities(dep)
    return found


def _table() -> list[tuple[str, str, str]]:
    """(method, path, capability) of every guarded route: API ones by their dependency, pages by ``PAGES``."""
    rows: list[tuple[str, str, str]] = []
    for path, methods, route in _api_routes():
        for method in sorted(methods - {"HEAD"}):
            if (method, path) in PUBLIC:
                continue
            caps = _capabilities(route.dependant)
            if path.startswith("/api/"):
                assert len(caps) == 1, f"{method} {path} must depend on exactly one require(...): {caps}"
                rows.append((method, path, caps.pop()))
            else:
                assert path in PAGES, f"page {method} {path} is not in api.permissions.PAGES"
                rows.append((method, path, PAGES[path]))
    return rows


def test_every_route_has_one_capability_of_the_table() -> None:
    rows = _table()
    assert {(m, p) for m, p, _c in rows} == set(API_ACCESS) | set(WEB_ACCESS)
    for method, path, cap in rows:
        assert cap in RULES, (method, path, cap)
        expected = API_ACCESS.get((method, path), WEB_ACCESS.get((method, path)))
        assert RULES[cap].roles == expected, (method, path, cap)
    assert set(PAGES) == {p for _m, p in WEB_ACCESS}


# The routes that answer GET but write: each read of evidence content, each export is an audit event.
WRITING_READS = {
    ("GET", "/api/v1/recordings/{recording_id}/content"),
    ("GET", "/api/v1/cases/{case_number}/export"),
    ("GET", "/exports/{case_number:path}"),
    ("GET", "/recordings/{recording_id}/play"),
    ("GET", "/recordings/{recording_id}/content"),
}


def _readings(dependant: Dependant) -> set[type]:
    """The ``Reading`` kinds a route depends on (the API's token, or a page's cookie)."""
    found: set[type] = set()
    for dep in dependant.dependencies:
        returned = get_type_hints(dep.call).get("return") if inspect.isfunction(dep.call) else None
        if isinstance(returned, type) and issubclass(returned, Reading):
            found.add(returned)
        found |= _readings(dep)
    return found


def test_every_route_that_only_reads_is_a_reading() -> None:
    """One way to read: every guarded GET, HEAD or OPTIONS (and nothing else) admits its caller through
    ``Reading`` (its token, or a page's cookie) in its one reading session, except the reads that write an
    audit event; and no route has a second, older reading session besides it."""
    for path, methods, route in _api_routes():
        for method in sorted(methods):
            if (method, path) in PUBLIC or (method == "HEAD" and "GET" in methods):
                continue
            kinds = _readings(route.dependant)
            reads = method in ("GET", "HEAD", "OPTIONS") and (method, path) not in WRITING_READS
            assert len(kinds) == (1 if reads else 0), (method, path, kinds)


def test_every_capability_a_reviewer_holds_is_scoped() -> None:
    held = {c for c, r in RULES.items() if "reviewer" in r.roles}
    assert held and all(RULES[c].scoped for c in held), held


SCOPED = sorted((m, p) for m, p, c in _table() if RULES[c].scoped)


def _u1_finding(runtime: Runtime) -> str:
    """A finding of U1's (an auditor's, on A-1) for the routes that name one."""
    with transaction(runtime.sessions) as s:
        found = open_by_hand(s, "action:A-1", "uniform", "seen in the footage", "token:auditor", utcnow(), {})
        return str(found.id)


def _url(path: str, found: Scene, finding_id: str | None = None) -> str:
    values = {
        "{finding_id}": finding_id or "",
        "{recording_id}": str(found.a.id),
        "{action_id}": "A-1",
        "{action_id:path}": "A-1",
        "{case_number}": "C-U1",
        "{case_number:path}": "C-U1",
        "{fmt}": "csv",
    }
    for name, value in values.items():
        path = path.replace(name, value)
    assert "{" not in path, path
    return path


@pytest.mark.parametrize(("method", "path"), SCOPED)
def test_scoped_route_keeps_another_units_evidence_out(
    client: TestClient,
    scene: Scene,
    runtime: Runtime,
    method: str,
    path: str,
) -> None:
    """Carol (unit U2) asks every scoped route for U1's things: refused for approval, or answered without them."""
    url = _url(path, scene, _u1_finding(runtime) if "{finding_id}" in path else None)
    if path.startswith("/api/"):
        response = client.request(method, url, headers=scene.auth(scene.carol))
    else:
        client.cookies.clear()
        signed_in(client, scene.carol)
        response = client.request(method, url)
    if response.status_code == 403:
        body: Any = response.json() if "json" in response.headers.get("content-type", "") else None
        if body is not None:
            assert body["error"]["code"] == "approval_required", body
        else:
            assert "Approval required" in response.text
        return
    assert response.status_code == 200, (url, response.status_code, response.text[:300])
    text = response.content.decode("utf-8", "replace")
    for secret in ("A-1", "C-U1", scene.a.sha256):
        assert secret not in text, (url, secret)
