"""Rough edges of the pages (SPEC §11): play links for auditors, one audit event per viewing, the recordings
page's filters and pages, the case page's summary, and roles, statuses and zones in words.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta

from fastapi.testclient import TestClient

from storage.db import transaction
from storage.models import ActionRecording, Recording, Station
from storage.runtime import Runtime
from tests.api.conftest import Ingested, Tokens, events
from tests.api.web_client import signed_in
from tests.fixtures.audit_data import action, recording, utc


def test_an_auditor_following_a_play_link_is_told_why(
    client: TestClient, tokens: Tokens, runtime: Runtime, recording: Ingested
) -> None:
    signed_in(client, tokens.secrets["auditor"], "zh")
    response = client.get(f"/recordings/{recording.id}/play?lang=zh", follow_redirects=False)
    assert response.status_code == 403
    assert "您的角色无权播放证据录像" in response.text and 'name="token"' not in response.text
    en = client.get(f"/recordings/{recording.id}/play", follow_redirects=False)
    assert "Your role may not play evidence" in en.text
    assert client.get(f"/recordings/{recording.id}/content").status_code == 403
    assert events(runtime, "evidence.read") == []


def test_one_viewing_is_one_audit_event_naming_the_viewer(
    client: TestClient, tokens: Tokens, runtime: Runtime, recording: Ingested
) -> None:
    signed_in(client, tokens.secrets["reviewer"])
    assert client.get(f"/recordings/{recording.id}/play").status_code == 200
    for span in ("bytes=0-99", "bytes=100-", "bytes=50-60"):  # what a <video> asks while it plays and seeks
        assert client.get(f"/recordings/{recording.id}/content", headers={"Range": span}).status_code == 206
    reads = events(runtime, "evidence.read")
    assert [e.actor for e in reads] == ["token:reviewer-1"]
    details = json.loads(reads[0].details)
    assert details["via"] == "web" and details["range"] == [0, 99] and details["role"] == "reviewer"
    # opening the player again is another viewing
    assert client.get(f"/recordings/{recording.id}/play").status_code == 200
    client.get(f"/recordings/{recording.id}/content", headers={"Range": "bytes=0-1"})
    assert len(events(runtime, "evidence.read")) == 2
    # a range that cannot be served reads nothing and leaves the next viewing's first read to be audited
    client.get(f"/recordings/{recording.id}/play")
    refused = client.get(f"/recordings/{recording.id}/content", headers={"Range": f"bytes={recording.size + 10}-"})
    assert refused.status_code == 416 and len(events(runtime, "evidence.read")) == 2
    client.get(f"/recordings/{recording.id}/content", headers={"Range": "bytes=0-1"})
    assert len(events(runtime, "evidence.read")) == 3


def test_another_viewer_is_audited_on_their_own(
    client: TestClient, tokens: Tokens, runtime: Runtime, recording: Ingested
) -> None:
    signed_in(client, tokens.secrets["reviewer"])
    client.get(f"/recordings/{recording.id}/content", headers={"Range": "bytes=0-9"})
    client.get(f"/recordings/{recording.id}/content", headers={"Range": "bytes=10-19"})
    signed_in(client, tokens.secrets["admin"])
    client.get(f"/recordings/{recording.id}/content", headers={"Range": "bytes=0-9"})
    assert [e.actor for e in events(runtime, "evidence.read")] == ["token:reviewer-1", "token:admin-1"]


def _many_recordings(runtime: Runtime) -> None:
    """55 recordings of DEV-A (officer P-A, station ST-1) on 1 May, one unplayable of DEV-B on 2 May."""
    with transaction(runtime.sessions) as s:
        station = Station(code="ST-1")
        s.add(station)
        s.flush()
        for n in range(55):
            rec = recording(s, "DEV-A", utc(2024, 5, 1, 8) + timedelta(minutes=n), seconds=30)
            rec.officer_code, rec.station_id = "P-A", station.id
        odd = recording(s, "DEV-B", utc(2024, 5, 2, 9), seconds=30)
        odd.status, odd.officer_code = "unplayable", "P-B"


def _ids(html: str) -> list[str]:
    return re.findall(r"<tr><td>(\d+)</td><td>DEV-", html)


def test_recordings_page_filters_and_pages(client: TestClient, tokens: Tokens, runtime: Runtime) -> None:
    _many_recordings(runtime)
    signed_in(client, tokens.secrets["auditor"])
    first = client.get("/recordings").text
    assert len(_ids(first)) == 50 and "DEV-B" in first  # newest first
    assert 'rel="next" href="/recordings?page=2&amp;lang=en"' in first and 'rel="prev"' not in first
    second = client.get("/recordings?page=2").text
    assert len(_ids(second)) == 6 and 'rel="prev"' in second and 'rel="next"' not in second
    assert not set(_ids(first)) & set(_ids(second))
    by_device = client.get("/recordings", params={"device": "DEV-B"}).text
    assert len(_ids(by_device)) == 1 and "unplayable" in by_device
    assert len(_ids(client.get("/recordings", params={"officer": "P-A"}).text)) == 50
    assert _ids(client.get("/recordings", params={"station": "ST-1", "status": "unplayable"}).text) == []
    assert len(_ids(client.get("/recordings", params={"status": "unplayable"}).text)) == 1
    day = client.get("/recordings", params={"from": "2024-05-02", "to": "2024-05-02"}).text
    assert len(_ids(day)) == 1 and "DEV-B" in day
    filtered = client.get("/recordings", params={"officer": "P-A", "page": "1"}).text
    assert 'href="/recordings?page=2&amp;officer=P-A&amp;lang=en"' in filtered  # filters kept across pages
    zh = client.get("/recordings", params={"status": "unplayable", "lang": "zh"}).text
    assert "无法播放" in zh and "协调世界时" in zh
    backwards = client.get("/recordings", params={"from": "2024-05-03", "to": "2024-05-01", "lang": "zh"})
    assert backwards.status_code == 422 and "起始日期晚于截止日期" in backwards.text
    # a smaller page: the pager and the filter form keep its size; out of range is refused as a page
    small = client.get("/recordings", params={"per_page": "20", "page": "2"}).text
    assert len(_ids(small)) == 20 and not set(_ids(small)) & set(_ids(first)[:20])
    assert 'href="/recordings?page=3&amp;per_page=20&amp;lang=en"' in small
    assert '<input type="hidden" name="per_page" value="20">' in small
    assert len(_ids(client.get("/recordings", params={"per_page": "20", "page": "3"}).text)) == 16
    too_big = client.get("/recordings", params={"per_page": "201"})
    assert too_big.status_code == 422 and "per_page" in too_big.text and "<html" in too_big.text


def test_case_page_shows_summary_actions_of_recordings_and_hold(
    client: TestClient, tokens: Tokens, runtime: Runtime
) -> None:
    with transaction(runtime.sessions) as s:
        one = recording(s, "DEV-1", utc(2024, 5, 1, 8), seconds=3600)
        one.retention_until = utc(2025, 1, 1)
        two = recording(s, "DEV-2", utc(2024, 5, 1, 10), seconds=600)
        first = action(s, "K-1", "U1", utc(2024, 5, 1, 8), "complete", devices=("DEV-1",))
        second = action(s, "K-2", "U1", utc(2024, 5, 1, 10), "incomplete", minutes=10, devices=("DEV-2",))
        first.case_number = second.case_number = "CASE-9"
        s.add_all(
            [
                ActionRecording(action_id=first.id, recording_id=one.id),
                ActionRecording(action_id=second.id, recording_id=two.id),
            ]
        )
        ids = (one.id, two.id)
    signed_in(client, tokens.secrets["reviewer"])
    html = client.get("/cases/CASE-9").text
    assert "2 actions: 1 complete, 0 pending, 1 incomplete; 2 recordings." in html
    table = html.split('class="case-recordings"')[1].split("</table>")[0]
    rows = {int(m[0]): m[1] for m in re.findall(r"<tr><td>(\d+)</td>\s*<td>(.*?)</td>", table, re.S)}
    assert "/actions/K-1?" in rows[ids[0]] and "/actions/K-2?" in rows[ids[1]]
    assert "2025-01-01 00:00:00" in html and "not held" in html
    zh = client.get("/cases/CASE-9?lang=zh").text
    assert "共 2 起执法行动" in zh and "未保全" in zh and "审查员" in zh  # the role in words


def test_recording_row_status_is_in_words(client: TestClient, tokens: Tokens, runtime: Runtime) -> None:
    with transaction(runtime.sessions) as s:
        recording(s, "DEV-9", utc(2024, 5, 1, 8)).status = "unplayable"
    signed_in(client, tokens.secrets["reviewer"], "zh")
    assert "无法播放" in client.get("/?lang=zh").text
    with runtime.sessions() as s:
        assert s.query(Recording).count() == 1
