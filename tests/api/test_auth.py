"""Every endpoint checks its token and role: 401 without a valid token, 403 for a wrong role (SPEC §8).

The tables below ARE the access policy. A new endpoint that is not in them fails
``test_every_route_is_in_the_access_table``, so nobody adds an endpoint without deciding who may call it.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import ROLES, create_token, revoke_token
from api.web_sessions import SESSION_COOKIE, signed_in
from config.settings import Settings
from storage.db import transaction
from storage.runtime import Runtime
from tests.api.conftest import Tokens
from tests.api.web_client import session_key

# (method, path) -> roles admitted besides admin
API_ACCESS: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/api/v1/metrics"): frozenset({"auditor"}),
    ("GET", "/api/v1/recordings"): frozenset({"reviewer", "auditor"}),
    ("POST", "/api/v1/recordings"): frozenset({"station"}),
    ("OPTIONS", "/api/v1/uploads"): frozenset({"station"}),
    ("POST", "/api/v1/uploads"): frozenset({"station"}),
    ("PATCH", "/api/v1/uploads/{upload_id}"): frozenset({"station"}),
    ("DELETE", "/api/v1/uploads/{upload_id}"): frozenset({"station"}),
    ("GET", "/api/v1/recordings/{recording_id}"): frozenset({"reviewer", "auditor"}),
    ("GET", "/api/v1/recordings/{recording_id}/content"): frozenset({"reviewer"}),
    ("GET", "/api/v1/ingest/failures"): frozenset({"auditor"}),
    ("GET", "/api/v1/actions"): frozenset({"reviewer", "auditor"}),
    ("POST", "/api/v1/actions"): frozenset(),
    ("POST", "/api/v1/actions/import"): frozenset(),
    ("GET", "/api/v1/actions/{action_id}"): frozenset({"reviewer", "auditor"}),
    ("POST", "/api/v1/actions/{action_id}/links/{recording_id}"): frozenset({"reviewer"}),
    ("DELETE", "/api/v1/actions/{action_id}/links/{recording_id}"): frozenset({"reviewer"}),
    ("GET", "/api/v1/cases/{case_number}"): frozenset({"reviewer", "auditor"}),
    ("POST", "/api/v1/cases/{case_number}/hold"): frozenset(),
    ("GET", "/api/v1/cases/{case_number}/export"): frozenset({"reviewer"}),
    ("POST", "/api/v1/cases/{case_number}/release"): frozenset(),
    ("GET", "/api/v1/reports/missing"): frozenset({"reviewer", "auditor"}),
    ("GET", "/api/v1/reports/period"): frozenset({"auditor"}),
    ("GET", "/api/v1/audit/events"): frozenset({"auditor"}),
    ("GET", "/api/v1/audit/checkpoint"): frozenset({"auditor"}),
    ("GET", "/api/v1/audit/events/{seq}/proof"): frozenset({"auditor"}),
    ("GET", "/api/v1/audit/consistency"): frozenset({"auditor"}),
    # the rectification ledger (SPEC §13): auditors change findings, reviewers read them
    ("GET", "/api/v1/findings"): frozenset({"reviewer", "auditor"}),
    ("POST", "/api/v1/findings"): frozenset({"auditor"}),
    ("GET", "/api/v1/findings/{finding_id}"): frozenset({"reviewer", "auditor"}),
    ("POST", "/api/v1/findings/{finding_id}/notes"): frozenset({"auditor"}),
    ("POST", "/api/v1/findings/{finding_id}/close"): frozenset({"auditor"}),
    ("POST", "/api/v1/findings/{finding_id}/waive"): frozenset({"auditor"}),
    ("GET", "/api/v1/access/grants"): frozenset(),
    ("POST", "/api/v1/access/grants"): frozenset(),
    ("DELETE", "/api/v1/access/grants/{grant_id}"): frozenset(),
}
# Web pages take the token from the login cookie; without one a page redirects to the login form.
WEB_ACCESS: dict[tuple[str, str], frozenset[str]] = {
    ("GET", "/"): frozenset({"reviewer", "auditor"}),
    ("GET", "/recordings/{recording_id}/play"): frozenset({"reviewer"}),
    ("GET", "/recordings/{recording_id}/content"): frozenset({"reviewer"}),
    ("GET", "/cases"): frozenset({"reviewer", "auditor"}),
    ("GET", "/cases/{case_number:path}"): frozenset({"reviewer", "auditor"}),
    ("GET", "/actions/{action_id:path}"): frozenset({"reviewer", "auditor"}),
    ("GET", "/exports/{case_number:path}"): frozenset({"reviewer"}),
    ("GET", "/reports/missing"): frozenset({"reviewer", "auditor"}),
    ("GET", "/reports/missing.{fmt}"): frozenset({"reviewer", "auditor"}),
    ("GET", "/reports/period"): frozenset({"auditor"}),
    ("GET", "/reports/period.{fmt}"): frozenset({"auditor"}),
    ("GET", "/recordings"): frozenset({"reviewer", "auditor"}),
    ("GET", "/admin"): frozenset(),
    ("GET", "/admin/{section}"): frozenset(),
    ("POST", "/admin/devices"): frozenset(),
    ("POST", "/admin/officers"): frozenset(),
    ("POST", "/admin/assignments"): frozenset(),
    ("POST", "/admin/{section}/import"): frozenset(),
    ("POST", "/admin/tokens"): frozenset(),
    ("POST", "/admin/tokens/{token_id}/revoke"): frozenset(),
    # the access grants page
    ("GET", "/admin/access"): frozenset(),
    ("POST", "/admin/access"): frozenset(),
    ("POST", "/admin/access/{grant_id}/revoke"): frozenset(),
    # the findings ledger pages
    ("GET", "/findings"): frozenset({"reviewer", "auditor"}),
    ("GET", "/findings.{fmt}"): frozenset({"reviewer", "auditor"}),
    ("GET", "/findings/{finding_id}"): frozenset({"reviewer", "auditor"}),
    ("POST", "/findings/new"): frozenset({"auditor"}),
    ("POST", "/findings/{finding_id}/notes"): frozenset({"auditor"}),
    ("POST", "/findings/{finding_id}/close"): frozenset({"auditor"}),
    ("POST", "/findings/{finding_id}/waive"): frozenset({"auditor"}),
}
PUBLIC = {
    ("GET", "/api/v1/healthz"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/docs"),
    ("GET", "/api/v1/docs/oauth2-redirect"),
    ("GET", "/login"),
    ("POST", "/login"),
    ("POST", "/logout"),
    ("GET", "/static/{name}"),
}
SAMPLE_PARAMS = {
    "recording_id": "999999",
    "action_id": "NO-SUCH-ACTION",
    "case_number": "NO-SUCH-CASE",
    "seq": "1",
    "case_number:path": "NO/SUCH/CASE",
    "action_id:path": "NO/SUCH/ACTION",
    "fmt": "xlsx",
    "finding_id": "999999",
    "upload_id": "0" * 32,
    "grant_id": "999999",
    "section": "devices",
    "token_id": "999999",
}


def _routes() -> set[tuple[str, str]]:
    app = create_app(Settings(home="/nonexistent-bwc-home"))  # builds nothing until its lifespan starts
    found = set()
    for ctx in iter_route_contexts(app.routes):
        for method in ctx.methods or ():
            if method != "HEAD":
                found.add((method, str(ctx.path)))
    return found


# Well-formed values of required query parameters: a reading route (``api.deps.Reading``) validates its
# parameters before it reads the token, so a request missing them is a 422 whoever sends it.
SAMPLE_QUERIES = {"/api/v1/audit/consistency": "from=0&to=0"}


def _url(path: str) -> str:
    query = SAMPLE_QUERIES.get(path)
    for name, value in SAMPLE_PARAMS.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"add a sample value for the path parameter in {path}"
    return f"{path}?{query}" if query else path


def test_every_route_is_in_the_access_table() -> None:
    declared = set(API_ACCESS) | set(WEB_ACCESS) | PUBLIC
    assert _routes() == declared


@pytest.fixture
def revoked(runtime: Runtime) -> str:
    with transaction(runtime.sessions) as s:
        _token, secret = create_token(s, role="admin", name="gone", actor="test")
    with transaction(runtime.sessions) as s:
        revoke_token(s, "gone", actor="test")
    return secret


def _call(client: TestClient, method: str, url: str, headers: dict[str, str] | None = None) -> Any:
    return client.request(method, url, headers=headers or {})


@pytest.mark.parametrize(("method", "path"), sorted(API_ACCESS))
def test_api_route_checks_token_and_role(
    client: TestClient, tokens: Tokens, revoked: str, method: str, path: str
) -> None:
    url = _url(path)
    anonymous = _call(client, method, url)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
    assert anonymous.headers["www-authenticate"] == "Bearer"
    for secret in ("bwc_not-a-real-token", revoked):
        bad = _call(client, method, url, {"Authorization": f"Bearer {secret}"})
        assert bad.status_code == 401, secret
    assert _call(client, method, url, {"Authorization": "Basic dXNlcjpwdw=="}).status_code == 401
    allowed = API_ACCESS[(method, path)] | {"admin"}
    for role in ROLES:
        response = _call(client, method, url, tokens.headers(role))
        if role in allowed:
            assert response.status_code not in (401, 403), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)
            assert response.json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(
    "url", ["/api/v1/findings?limit=0", "/api/v1/audit/consistency?from=-1&to=0", "/api/v1/recordings?limit=0"]
)
def test_a_reading_route_answers_in_one_order(client: TestClient, tokens: Tokens, url: str) -> None:
    """Every reading route (README, "Reading routes"): no bearer header is 401 before anything else; then the
    parameters (422, whatever the token); then the token (401) and its role (403). No data is read either way."""
    bogus = {"Authorization": "Bearer bwc_not-a-real-token"}
    assert _call(client, "GET", url).status_code == 401
    assert _call(client, "GET", url, bogus).status_code == 422
    assert _call(client, "GET", url, tokens.headers("station")).status_code == 422
    well_formed = url.replace("limit=0", "limit=1").replace("from=-1", "from=0")
    assert _call(client, "GET", well_formed, bogus).status_code == 401
    assert _call(client, "GET", well_formed, tokens.headers("station")).status_code == 403


@pytest.mark.parametrize(("method", "path"), sorted(WEB_ACCESS))
def test_web_route_checks_cookie_and_role(
    client: TestClient, runtime: Runtime, tokens: Tokens, revoked: str, method: str, path: str
) -> None:
    url = _url(path)
    anonymous = client.request(method, url, follow_redirects=False)
    assert anonymous.status_code in (303, 401)
    if anonymous.status_code == 303:
        assert anonymous.headers["location"].startswith("/login")
    # a bearer header is not what the pages read, nor a raw token in the cookie: only a live session
    assert client.request(method, url, headers=tokens.headers("admin"), follow_redirects=False).status_code in (
        303,
        401,
    )
    client.cookies.set(SESSION_COOKIE, tokens.secrets["admin"])
    assert client.request(method, url, follow_redirects=False).status_code in (303, 401)
    client.cookies.clear()
    allowed = WEB_ACCESS[(method, path)] | {"admin"}
    for role in ROLES:
        key = session_key(runtime, tokens.secrets[role])
        client.cookies.set(SESSION_COOKIE, key)
        data = {"csrf": _csrf(runtime, key)} if method == "POST" else None
        response = client.request(method, url, data=data, follow_redirects=False)
        client.cookies.clear()
        if role in allowed:
            assert response.status_code not in (303, 401, 403), (role, response.text)
        else:
            assert response.status_code == 403, (role, response.text)


def _csrf(runtime: Runtime, key: str) -> str:
    with transaction(runtime.sessions) as s:
        web = signed_in(s, key)
    assert web is not None
    return web.csrf


def test_public_routes_need_no_token(client: TestClient) -> None:
    assert client.get("/api/v1/healthz").status_code == 200
    assert client.get("/api/v1/openapi.json").json()["info"]["title"] == "BWC Evidence"
    assert client.get("/login").status_code == 200


def test_openapi_declares_bearer_security(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert {"bearer" in str(op.get("security")).lower() for op in doc["paths"]["/api/v1/recordings"].values()} == {True}
    assert "security" not in doc["paths"]["/api/v1/healthz"]["get"]
