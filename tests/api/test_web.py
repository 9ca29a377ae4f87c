"""The landing page: login by token into a cookie, recent recordings and failures, English and Chinese."""

from __future__ import annotations

from fastapi.testclient import TestClient

from storage.runtime import Runtime
from tests.api.conftest import Ingested, Tokens, events
from tests.api.web_client import csrf_in, sign_in


def _login(client: TestClient, secret: str, lang: str = "en") -> None:
    response = sign_in(client, secret, lang)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/?lang={lang}"
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie


def test_page_needs_a_login(client: TestClient) -> None:
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?lang=en&next=%2F"
    form = client.get("/login?lang=zh")
    assert "访问令牌" in form.text and 'lang="zh-CN"' in form.text


def test_bad_or_station_token_cannot_log_in(client: TestClient, tokens: Tokens) -> None:
    bad = sign_in(client, "bwc_wrong")
    assert bad.status_code == 401 and "unknown or revoked" in bad.text
    assert "bwc_session" not in bad.headers.get("set-cookie", "")
    station = sign_in(client, tokens.secrets["station"])
    assert station.status_code == 403


def test_page_lists_recent_recordings_in_both_languages(
    client: TestClient, tokens: Tokens, recording: Ingested
) -> None:
    _login(client, tokens.secrets["reviewer"])
    page = client.get("/")
    assert page.status_code == 200
    assert "Recent recordings" in page.text
    assert recording.path.name in page.text and "DEV-7" in page.text
    assert f"/recordings/{recording.id}/play" in page.text
    zh = client.get("/?lang=zh")
    # ingest failures are the auditor's on the pages as on the API (GET /api/v1/ingest/failures)
    assert "最近的录像" in zh.text and "等待重试的入库失败文件" not in zh.text


def test_auditor_sees_the_page_but_no_play_link(client: TestClient, tokens: Tokens, recording: Ingested) -> None:
    _login(client, tokens.secrets["auditor"], "zh")
    page = client.get("/?lang=zh")
    assert page.status_code == 200 and recording.path.name in page.text
    assert "等待重试的入库失败文件" in page.text
    assert f"/recordings/{recording.id}/play" not in page.text


def test_in_browser_playback_reads_are_audited(
    client: TestClient, tokens: Tokens, runtime: Runtime, recording: Ingested
) -> None:
    _login(client, tokens.secrets["reviewer"])
    page = client.get(f"/recordings/{recording.id}/play")
    assert page.status_code == 200 and f'src="/recordings/{recording.id}/content"' in page.text
    part = client.get(f"/recordings/{recording.id}/content", headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == recording.path.read_bytes()[:100]
    reads = events(runtime, "evidence.read")
    assert [e.actor for e in reads] == ["token:reviewer-1"]


def test_logout_forgets_the_cookie(client: TestClient, tokens: Tokens) -> None:
    _login(client, tokens.secrets["reviewer"])
    assert client.get("/", follow_redirects=False).status_code == 200
    out = client.post("/logout", data={"csrf": csrf_in(client.get("/").text)}, follow_redirects=False)
    assert out.status_code == 303
    assert client.get("/", follow_redirects=False).status_code == 303
