"""Case search, case and action pages: real recordings, real coverage, both languages (SPEC §11)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from storage.runtime import Runtime
from tests.api.conftest import Tokens, events, ingest
from tests.api.web_client import signed_in, use_session
from tests.fixtures.media import MediaFactory

HOSTILE = "<script>alert(1)</script>"
ROLE_WORDS = {"admin": "administrator", "reviewer": "reviewer", "auditor": "auditor"}
PAGES = ("/cases", "/cases?q=C-", "/cases/C-77", "/actions/A-1", "/reports/missing")


def login(client: TestClient, secret: str) -> None:
    signed_in(client, secret)


@dataclass
class Scene:
    ok1: int  # DEV-1, 10 s from 08:00:00
    ok2: int  # DEV-2, 10 s from 08:00:05
    mute: int  # DEV-3, 4 s without sound from 08:00:00


@pytest.fixture
def scene(client: TestClient, tokens: Tokens, runtime: Runtime, media: MediaFactory, tmp_path: Path) -> Scene:
    """Action A-1 (case C-77) over 08:00:00–08:00:20 with three cameras: depth 1, 2, 1, 0 → two shortfalls."""
    cam = tmp_path / "cam"
    ok1 = ingest(runtime, media.make(cam / "DEV-1_P1_20240501080000_0001.mp4", seconds=10))
    ok2 = ingest(runtime, media.make(cam / "DEV-2_P2_20240501080005_0001.mp4", seconds=10, tone=660))
    mute = ingest(runtime, media.make(cam / "DEV-3_P3_20240501080000_0001.mp4", seconds=4, audio=False))
    for body in (
        {
            "action_id": "A-1",
            "case_number": "C-77",
            "unit": "U1",
            "started_at": "2024-05-01T08:00:00Z",
            "ended_at": "2024-05-01T08:00:20Z",
            "officers": ["P1", "P2"],
            "devices": ["DEV-1", "DEV-2", "DEV-3"],
            "location": HOSTILE,
            "kind": "inspection",
        },
        {"action_id": "B-2", "case_number": "C-77", "started_at": "2024-05-02 09:00", "ended_at": "2024-05-02 09:30"},
        {"action_id": "X_%9", "case_number": "D-1", "started_at": "2024-05-03 09:00", "ended_at": "2024-05-03 09:30"},
    ):
        response = client.post("/api/v1/actions", json=body, headers=tokens.headers("admin"))
        assert response.status_code == 200, response.text
    return Scene(ok1.id, ok2.id, mute.id)


def test_action_page_has_header_timeline_and_reasons(
    client: TestClient, tokens: Tokens, runtime: Runtime, scene: Scene
) -> None:
    login(client, tokens.secrets["reviewer"])
    page = client.get("/actions/A-1")
    assert page.status_code == 200, page.text
    html = page.text
    assert "Action A-1" in html and 'href="/cases/C-77?lang=en"' in html and "inspection" in html
    assert "DEV-1, DEV-2, DEV-3" in html and "P1, P2" in html and "badge-incomplete" in html
    assert "2024-05-01 08:00:00 – 08:00:20 (UTC)" in html
    # one lane per device, one shaded band per shortfall, one bar per recording linking to its player
    assert html.count('<g class="lane"') == 3
    assert re.findall(r'<g class="lane" data-device="([^"]+)"', html) == ["DEV-1", "DEV-2", "DEV-3"]
    assert html.count('class="shortfall"') == 2
    assert "From 2024-05-01 08:00:00 to 2024-05-01 08:00:05 fewer devices than required" in html
    assert "From 2024-05-01 08:00:10 to 2024-05-01 08:00:20" in html
    assert f"Recording {scene.mute} of device DEV-3 has no sound." in html
    assert html.count('class="bar bar-ok"') == 2 and html.count('class="bar bar-bad"') == 1
    for rid in (scene.ok1, scene.ok2, scene.mute):
        assert f'<a href="/recordings/{rid}/play?lang=en">' in html
    # hostile text from a CSV/API is shown, never run
    assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # looking at the action reads no evidence
    assert events(runtime, "evidence.read") == []


def test_action_page_in_chinese(client: TestClient, tokens: Tokens, scene: Scene) -> None:
    login(client, tokens.secrets["reviewer"])
    html = client.get("/actions/A-1?lang=zh").text
    assert 'lang="zh-CN"' in html and "执法行动 A-1" in html
    for label in ("案件编号", "执法记录设备", "时间轴", "不完整", "在录设备不足", "缺失录像报告", "案件查询"):
        assert label in html, label
    assert "2024-05-01 08:00:00 至 2024-05-01 08:00:05 期间在录设备不足（全程在录：DEV-1）。" in html
    assert f"设备 DEV-3 的录像 {scene.mute} 没有声音。" in html
    assert html.count('<g class="lane"') == 3 and html.count('class="shortfall"') == 2
    assert f"/recordings/{scene.ok1}/play?lang=zh" in html
    # the language switch keeps the page
    assert 'href="/actions/A-1?lang=en"' in html


def test_action_times_follow_the_deployment_zone(
    runtime: Runtime, tokens: Tokens, scene: Scene, client: TestClient
) -> None:
    runtime.settings.timezone = "Asia/Shanghai"  # the app shares this Settings object
    login(client, tokens.secrets["reviewer"])
    html = client.get("/actions/A-1").text
    assert "2024-05-01 16:00:00 – 16:00:20 (Asia/Shanghai)" in html
    assert ">16:00:00</text>" in html  # the first tick, in local time


def test_auditor_sees_the_timeline_without_play_links(client: TestClient, tokens: Tokens, scene: Scene) -> None:
    login(client, tokens.secrets["auditor"])
    html = client.get("/actions/A-1").text
    assert html.count('<g class="lane"') == 3
    assert "/play" not in html


def test_case_search_anywhere_in_case_or_action(client: TestClient, tokens: Tokens, scene: Scene) -> None:
    login(client, tokens.secrets["reviewer"])
    by_case = client.get("/cases", params={"q": "c-7"}).text  # case-insensitive
    assert 'href="/actions/A-1?lang=en"' in by_case and 'href="/actions/B-2?lang=en"' in by_case
    assert "X_%9" not in by_case
    by_action = client.get("/cases", params={"q": "A-"}).text
    assert "/actions/A-1?" in by_action and "/actions/B-2?" not in by_action
    assert "badge-incomplete" in by_action and HOSTILE not in by_action
    # LIKE wildcards are text, not patterns
    literal = client.get("/cases", params={"q": "X_%"}).text
    assert "/actions/X_%259?" in literal
    percent = client.get("/cases", params={"q": "%"}).text  # only the id that holds a '%'
    assert "/actions/X_%259?" in percent and "/actions/A-1?" not in percent
    assert "No action matches." in client.get("/cases", params={"q": "_%x"}).text
    middle = client.get("/cases", params={"q": "77"}).text  # the end of a case number
    assert "/actions/A-1?" in middle and "/actions/B-2?" not in client.get("/cases", params={"q": "-1"}).text
    assert "/actions/X_%259?" in client.get("/cases", params={"q": "-1"}).text  # D-1: the middle and end
    assert "没有匹配的执法行动。" in client.get("/cases", params={"q": "nothing", "lang": "zh"}).text
    latest = client.get("/cases?lang=zh").text
    assert "最近的执法行动" in latest and latest.index("X_%9") < latest.index("B-2") < latest.index("A-1")


def test_case_page_lists_actions_and_recordings(client: TestClient, tokens: Tokens, scene: Scene) -> None:
    login(client, tokens.secrets["reviewer"])
    page = client.get("/cases/C-77")
    assert page.status_code == 200
    html = page.text
    assert "Case C-77" in html and "/actions/A-1?" in html and "/actions/B-2?" in html
    assert html.count("/play?lang=en") == 3 and "DEV-1_P1_20240501080000_0001.mp4" in html
    zh = client.get("/cases/C-77?lang=zh").text
    assert "案件 C-77" in zh and "录像 (3)" in zh and "不完整" in zh
    missing = client.get("/cases/NOPE")
    assert missing.status_code == 404 and "There is no action for case NOPE." in missing.text
    gone = client.get("/actions/NOPE?lang=zh")
    assert gone.status_code == 404 and "不存在执法行动 NOPE。" in gone.text


@pytest.mark.parametrize("role", ["admin", "reviewer", "auditor"])
def test_every_reading_role_sees_every_page(client: TestClient, tokens: Tokens, scene: Scene, role: str) -> None:
    login(client, tokens.secrets[role])
    for path in PAGES:
        response = client.get(path)
        assert response.status_code == 200, (role, path)
        assert f"{role}-1 ({ROLE_WORDS[role]})" in response.text and ">Missing-recording report</a>" in response.text


@pytest.mark.parametrize("path", PAGES)
def test_pages_need_a_login(client: TestClient, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login?lang=")


def test_station_tokens_are_refused(client: TestClient, tokens: Tokens, runtime: Runtime, scene: Scene) -> None:
    use_session(client, runtime, tokens.secrets["station"])
    for path in (*PAGES, "/reports/missing.csv", "/reports/missing.xlsx"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 403, path
        assert "inspection" not in response.text and "DEV-1" not in response.text
        if response.headers["content-type"].startswith("text/html"):
            assert "may not view this page" in response.text and ">Cases</a>" not in response.text


def test_stylesheet_is_served_and_paths_are_not(client: TestClient) -> None:
    css = client.get("/static/app.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "svg.timeline" in css.text
    assert client.get("/static/..%2Fapp.py").status_code == 404
    assert client.get("/static/missing.css").status_code == 404
    for name in ("sync.js", "timeline.js", "play.js"):  # the pages' plain scripts, no build step
        js = client.get(f"/static/{name}")
        assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript"), name
    assert client.get("/static/missing.js").status_code == 404
