"""Web sign-in (SPEC §11): server-side sessions, CSRF, throttling, Secure cookies, page headers, deep links."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import select, update

from api.app import create_app
from api.auth import create_token, revoke_token
from api.web_sessions import LOGIN_CSRF_COOKIE, MAX_FAILURES_PER_CLIENT, MAX_FAILURES_PER_NAME, SESSION_COOKIE
from storage.basics import utcnow
from storage.db import transaction
from storage.models import WebSession
from storage.runtime import Runtime
from tests.api.conftest import Tokens, events
from tests.api.web_client import csrf_in, sign_in, signed_in

TEMPLATES = Path(__file__).resolve().parents[2] / "api" / "templates"


def _set_cookie(response: Response, name: str) -> str:
    for value in response.headers.get_list("set-cookie"):
        if value.startswith(f"{name}="):
            return str(value)
    return ""


def test_the_cookie_holds_a_session_key_never_the_token(client: TestClient, tokens: Tokens, runtime: Runtime) -> None:
    secret = tokens.secrets["reviewer"]
    response = sign_in(client, secret)
    assert response.status_code == 303
    cookie = _set_cookie(response, SESSION_COOKIE)
    assert cookie and "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert secret not in " ".join(response.headers.get_list("set-cookie"))
    key = client.cookies[SESSION_COOKIE]
    with runtime.sessions() as s:
        stored = s.scalars(select(WebSession)).one()
    assert key not in (stored.key_hash, stored.csrf) and stored.expires_at > utcnow()
    assert [e.actor for e in events(runtime, "web.signed_in")] == ["token:reviewer-1"]


def test_signing_out_ends_the_session_on_the_server(client: TestClient, tokens: Tokens) -> None:
    signed_in(client, tokens.secrets["reviewer"], "zh")
    key = client.cookies[SESSION_COOKIE]
    out = client.post(
        "/logout", data={"csrf": csrf_in(client.get("/?lang=zh").text), "lang": "zh"}, follow_redirects=False
    )
    assert out.status_code == 303 and out.headers["location"] == "/login?lang=zh"  # the language survives
    client.cookies.set(SESSION_COOKIE, key)  # a copy of the old cookie is worth nothing now
    assert client.get("/", follow_redirects=False).status_code == 303


def test_an_expired_session_or_a_revoked_token_signs_out(client: TestClient, tokens: Tokens, runtime: Runtime) -> None:
    signed_in(client, tokens.secrets["reviewer"])
    assert client.get("/", follow_redirects=False).status_code == 200
    with transaction(runtime.sessions) as s:
        s.execute(update(WebSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert client.get("/", follow_redirects=False).status_code == 303
    signed_in(client, tokens.secrets["auditor"])
    assert client.get("/", follow_redirects=False).status_code == 200
    with transaction(runtime.sessions) as s:
        revoke_token(s, "auditor-1", actor="test")
    assert client.get("/", follow_redirects=False).status_code == 303


def test_sign_in_needs_the_forms_token_and_our_origin(client: TestClient, tokens: Tokens) -> None:
    secret = tokens.secrets["reviewer"]
    no_token = client.post("/login", data={"token": secret}, follow_redirects=False)
    assert no_token.status_code == 403 and "not sent from this site" in no_token.text
    assert not _set_cookie(no_token, SESSION_COOKIE)
    form = client.get("/login")
    assert _set_cookie(form, LOGIN_CSRF_COOKIE)
    csrf = csrf_in(form.text)
    wrong = client.post("/login", data={"token": secret, "csrf": csrf + "x"}, follow_redirects=False)
    assert wrong.status_code == 403
    csrf = csrf_in(wrong.text)  # each form shows a fresh token
    foreign = client.post(
        "/login",
        data={"token": secret, "csrf": csrf},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert foreign.status_code == 403 and not _set_cookie(foreign, SESSION_COOKIE)
    csrf = csrf_in(foreign.text)
    ours = client.post(
        "/login", data={"token": secret, "csrf": csrf}, headers={"Origin": "http://testserver"}, follow_redirects=False
    )
    assert ours.status_code == 303 and _set_cookie(ours, SESSION_COOKIE)


def test_sign_out_needs_the_sessions_token(client: TestClient, tokens: Tokens) -> None:
    signed_in(client, tokens.secrets["reviewer"])
    forged = client.post("/logout", data={"csrf": "guess"}, follow_redirects=False)
    assert forged.status_code == 403
    assert client.get("/", follow_redirects=False).status_code == 200  # still signed in


def test_an_empty_token_is_a_clear_message(client: TestClient) -> None:
    form = client.get("/login?lang=zh")
    response = client.post("/login", data={"token": "  ", "csrf": csrf_in(form.text), "lang": "zh"})
    assert response.status_code == 422 and "请先粘贴访问令牌。" in response.text
    assert response.headers["content-type"].startswith("text/html")


def test_failed_sign_ins_are_throttled_per_client(client: TestClient, tokens: Tokens) -> None:
    for _ in range(MAX_FAILURES_PER_CLIENT):
        assert sign_in(client, "bwc_guess").status_code == 401
    blocked = sign_in(client, tokens.secrets["reviewer"])  # even the right token waits
    assert blocked.status_code == 429 and "Too many failed sign-ins. Wait 15 minutes" in blocked.text
    assert int(blocked.headers["retry-after"]) > 0 and not _set_cookie(blocked, SESSION_COOKIE)
    zh = sign_in(client, "bwc_guess", "zh")
    assert zh.status_code == 429 and "登录失败次数过多" in zh.text


def test_failed_sign_ins_are_throttled_per_token_name(client: TestClient, tokens: Tokens, runtime: Runtime) -> None:
    with transaction(runtime.sessions) as s:
        _token, old = create_token(s, role="reviewer", name="alice", actor="test")
    with transaction(runtime.sessions) as s:
        revoke_token(s, "alice", actor="test")
    for _ in range(MAX_FAILURES_PER_NAME):
        assert sign_in(client, old).status_code == 401
    with transaction(runtime.sessions) as s:
        _token, new = create_token(s, role="reviewer", name="alice", actor="test")
    assert sign_in(client, new).status_code == 429  # attempts at alice's name
    assert sign_in(client, tokens.secrets["reviewer"]).status_code == 303  # the client itself is not blocked


def test_cookies_are_secure_behind_tls(runtime: Runtime, tokens: Tokens) -> None:
    def cookie_via(settings_update: dict[str, object], headers: dict[str, str], base: str = "http://testserver") -> str:
        app = create_app(runtime.settings.model_copy(update=settings_update))
        with TestClient(app, base_url=base, headers=headers) as c:  # as the proxy hands requests on
            form = c.get("/login")
            # the browser holds the (perhaps Secure) form cookie and shows it to the proxy over TLS
            c.cookies.set(LOGIN_CSRF_COOKIE, form.cookies[LOGIN_CSRF_COOKIE])
            data = {"token": tokens.secrets["reviewer"], "csrf": csrf_in(form.text)}
            response = c.post("/login", data=data, follow_redirects=False)
            assert response.status_code == 303, response.text
            return _set_cookie(response, SESSION_COOKIE).lower()

    assert "secure" not in cookie_via({}, {})
    public = "https://bwc.example.org"
    assert "secure" in cookie_via({"public_url": public}, {"Origin": public}, base=public)
    forwarded = {"X-Forwarded-Proto": "https"}
    assert "secure" not in cookie_via({}, forwarded)  # not from a proxy we trust
    assert "secure" in cookie_via({"trusted_proxies": ["testclient"]}, forwarded)


@pytest.mark.parametrize("path", ["/login", "/login?lang=zh", "/", "/cases", "/recordings", "/admin"])
def test_pages_carry_security_headers(client: TestClient, tokens: Tokens, path: str) -> None:
    signed_in(client, tokens.secrets["admin"])
    response = client.get(path)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["cache-control"] == "no-store"


def test_templates_need_no_inline_script_or_style() -> None:
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), template.name
        assert not re.search(r"\son[a-z]+\s*=", text), template.name
        assert "<style" not in text and "style=" not in text, template.name


def test_sign_in_returns_to_the_page_that_asked(client: TestClient, tokens: Tokens) -> None:
    asked = client.get("/cases?q=C-1&lang=zh", follow_redirects=False)
    assert asked.status_code == 303
    location = asked.headers["location"]
    assert location == "/login?lang=zh&next=%2Fcases%3Fq%3DC-1%26lang%3Dzh"
    form = client.get(location)
    assert 'name="next" value="/cases?q=C-1&amp;lang=zh"' in form.text
    back = sign_in(client, tokens.secrets["reviewer"], "zh", next_="/cases?q=C-1&lang=zh")
    assert back.status_code == 303 and back.headers["location"] == "/cases?q=C-1&lang=zh"


@pytest.mark.parametrize(
    "next_", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:alert(1)", "cases", "/login"]
)
def test_sign_in_never_redirects_off_site(client: TestClient, tokens: Tokens, next_: str) -> None:
    back = sign_in(client, tokens.secrets["reviewer"], next_=next_)
    assert back.status_code == 303 and back.headers["location"] == "/?lang=en"


def test_errors_on_pages_are_pages_in_the_pages_language(client: TestClient, tokens: Tokens) -> None:
    signed_in(client, tokens.secrets["reviewer"])
    for url, words in (
        ("/recordings/abc/play?lang=zh", "网址中有页面无法使用的值（录像编号）"),
        (f"/recordings/{2**40}/play?lang=zh", "网址中有页面无法使用的值"),
        ("/cases?lang=zh&q=" + "x" * 200, "网址中有页面无法使用的值（查询内容）"),
        ("/recordings?lang=zh&from=2024-13-01", "日期无效"),
        ("/reports/missing.csv?lang=zh&from=May", "输入的值无效"),
        ("/cases?q=" + "x" * 200, "This address has a value the page cannot use (q)"),
        ("/recordings/abc/play", "This address has a value the page cannot use (recording_id)"),
    ):
        response = client.get(url)
        assert 400 <= response.status_code < 500, url
        assert response.headers["content-type"].startswith("text/html"), url
        assert words in response.text, (url, response.text[-600:])
        assert "--" not in re.sub(r"<[^>]+>", "", response.text.split("<main>")[1]), url


def test_signing_out_without_a_session_just_shows_the_form(client: TestClient) -> None:
    response = client.post("/logout", data={"lang": "zh"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?lang=zh"


def test_an_error_page_still_knows_who_is_signed_in(client: TestClient, tokens: Tokens) -> None:
    signed_in(client, tokens.secrets["reviewer"])
    response = client.get("/recordings/abc/play")
    assert response.status_code == 422 and "Signed in as reviewer-1 (reviewer)" in response.text
