"""Actions, cases, the missing-recording report and the audit events over HTTP (SPEC §6, §8, §9)."""

from __future__ import annotations

import io
from pathlib import Path

from fastapi.testclient import TestClient
from openpyxl import load_workbook

from storage.runtime import Runtime
from tests.api.conftest import Tokens, ingest
from tests.fixtures.media import MediaFactory

CSV = (
    "action_id,case_number,unit,started_at,ended_at,officers,devices,location,kind\n"
    "A-1,C-100,U1,2024-05-01T08:00:00Z,2024-05-01T08:01:00Z,P1,DEV-1;DEV-2,Main St,inspection\n"
    "A-2,C-100,U2,2024-05-01T09:00:00Z,2024-05-01T09:10:00Z,P2,DEV-3,,\n"
    "A-3,,U1,not-a-time,2024-05-01T09:10:00Z,,,,\n"
)


def _import(client: TestClient, tokens: Tokens) -> dict[str, object]:
    response = client.post(
        "/api/v1/actions/import", content=CSV.encode(), headers={**tokens.headers("admin"), "Content-Type": "text/csv"}
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_import_reports_bad_rows_by_line(client: TestClient, tokens: Tokens) -> None:
    report = _import(client, tokens)
    assert report["created"] == 2
    errors = report["errors"]
    assert isinstance(errors, list) and [e["line"] for e in errors] == [4]
    again = _import(client, tokens)
    assert again["unchanged"] == 2 and again["created"] == 0


def test_a_bad_csv_header_is_422(client: TestClient, tokens: Tokens) -> None:
    response = client.post("/api/v1/actions/import", content=b"foo,bar\n1,2\n", headers=tokens.headers("admin"))
    assert response.status_code == 422
    assert "header" in response.json()["error"]["message"]


def test_actions_cases_and_coverage(
    client: TestClient, tokens: Tokens, runtime: Runtime, media: MediaFactory, tmp_path: Path
) -> None:
    rec = ingest(runtime, media.make(tmp_path / "x" / "DEV-1_P1_20240501080000_0001.mp4", seconds=2))
    _import(client, tokens)
    h = tokens.headers("auditor")  # every unit (a reviewer of U1 sees only its part of case C-100)

    one = client.get("/api/v1/actions/A-1", headers=h).json()
    assert one["devices"] == ["DEV-1", "DEV-2"] and one["recordings"] == [rec.id]
    assert [r["sha256"] for r in one["recording_details"]] == [rec.sha256]
    assert one["verdict"] == "incomplete"  # one device of two filmed 2 s of 60
    assert client.get("/api/v1/actions/NOPE", headers=h).status_code == 404

    listed = client.get("/api/v1/actions", params={"from": "2024-05-01", "to": "2024-05-01", "unit": "U1"}, headers=h)
    assert [a["action_id"] for a in listed.json()["actions"]] == ["A-1"]
    none = client.get("/api/v1/actions", params={"verdict": "complete"}, headers=h)
    assert none.json()["actions"] == []
    assert client.get("/api/v1/actions", params={"from": "May 1"}, headers=h).status_code == 422
    assert client.get("/api/v1/actions", params={"verdict": "great"}, headers=h).status_code == 422

    case = client.get("/api/v1/cases/C-100", headers=h).json()
    assert [a["action_id"] for a in case["actions"]] == ["A-1", "A-2"]
    assert [r["id"] for r in case["recordings"]] == [rec.id]
    assert client.get("/api/v1/cases/NOPE", headers=h).status_code == 404


def test_post_one_action(client: TestClient, tokens: Tokens) -> None:
    body = {"action_id": "A-9", "started_at": "2024-05-02 10:00", "ended_at": "2024-05-02 10:30", "devices": ["D-1"]}
    created = client.post("/api/v1/actions", json=body, headers=tokens.headers("admin"))
    assert created.status_code == 200, created.text
    assert created.json()["outcome"] == "created"
    assert created.json()["action"]["devices"] == ["D-1"]
    assert created.json()["action"]["started_at"].startswith("2024-05-02T10:00:00")
    backwards = {**body, "ended_at": "2024-05-02 09:00"}
    bad = client.post("/api/v1/actions", json=backwards, headers=tokens.headers("admin"))
    assert bad.status_code == 422 and "after" in bad.json()["error"]["message"]
    assert client.post("/api/v1/actions", json={"x": 1}, headers=tokens.headers("admin")).status_code == 422


def test_missing_report_in_three_formats(client: TestClient, tokens: Tokens) -> None:
    _import(client, tokens)
    h = tokens.headers("auditor")
    params = {"from": "2024-05-01", "to": "2024-05-01"}
    data = client.get("/api/v1/reports/missing", params=params, headers=h).json()
    assert {a["action_id"] for a in data["actions"]} == {"A-1", "A-2"}
    assert {u["unit"] for u in data["units"]} == {"U1", "U2"}
    csv = client.get("/api/v1/reports/missing", params={**params, "format": "csv"}, headers=h)
    assert csv.headers["content-type"].startswith("text/csv") and "A-1" in csv.text
    xlsx = client.get("/api/v1/reports/missing", params={**params, "format": "xlsx"}, headers=h)
    assert '.xlsx"' in xlsx.headers["content-disposition"]
    book = load_workbook(io.BytesIO(xlsx.content))
    assert any("A-1" in str(c.value) for ws in book.worksheets for row in ws.iter_rows() for c in row)
    assert client.get("/api/v1/reports/missing", params={"format": "pdf"}, headers=h).status_code == 422
    backwards = client.get("/api/v1/reports/missing", params={"from": "2024-05-02", "to": "2024-05-01"}, headers=h)
    assert backwards.status_code == 422


def test_audit_events_page_through(client: TestClient, tokens: Tokens) -> None:
    _import(client, tokens)
    h = tokens.headers("auditor")
    first = client.get("/api/v1/audit/events", params={"limit": 3}, headers=h).json()
    assert [e["seq"] for e in first["events"]] == [1, 2, 3]
    rest = client.get("/api/v1/audit/events", params={"after": first["next_after"]}, headers=h).json()
    assert rest["events"][0]["seq"] == 4
    kinds = {e["kind"] for e in first["events"] + rest["events"]}
    assert {"token.created", "action.created", "import.actions"} <= kinds
    assert all(e["at"].endswith("Z") and len(e["leaf_hash"]) == 64 for e in rest["events"])
