"""Signing a test client in through the real sign-in form (its CSRF token included), or straight into a session."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from httpx2 import Response

from api.auth import authenticate
from api.web_sessions import SESSION_COOKIE, start_session
from storage.db import transaction
from storage.runtime import Runtime

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_in(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF.search(html)
    assert found is not None, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: TestClient, secret: str, lang: str = "en", next_: str | None = None) -> Response:
    """Open the sign-in form, then send it as a browser would; the answer is not followed."""
    form = client.get("/login", params={"lang": lang})
    data = {"token": secret, "lang": lang, "csrf": csrf_in(form.text)}
    if next_ is not None:
        data["next"] = next_
    response: Response = client.post("/login", data=data, follow_redirects=False)
    return response


def signed_in(client: TestClient, secret: str, lang: str = "en") -> TestClient:
    response = sign_in(client, secret, lang)
    assert response.status_code == 303, response.text
    return client


def session_key(runtime: Runtime, secret: str) -> str:
    """A live web session for this token, made directly (for tests that walk many routes and roles)."""
    with transaction(runtime.sessions) as s:
        who = authenticate(s, secret)
        assert who is not None
        key, _row = start_session(s, who.token_id, 1.0)
    return key


def use_session(client: TestClient, runtime: Runtime, secret: str) -> TestClient:
    """Browse as this token from now on. The cookie a sign-in set is removed first: two cookies of one name are
    both sent, and which one the server reads depends on the client's order (httpx2 sends the newest first)."""
    client.cookies.delete(SESSION_COOKIE)
    client.cookies.set(SESSION_COOKIE, session_key(runtime, secret))
    return client
