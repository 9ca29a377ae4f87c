"""Findings over HTTP and on the command line (SPEC §13), on both databases: auditors change, reviewers read;
the ledger downloads keep the Chinese unit name in their file name; bad input is a clear error."""

from __future__ import annotations

import io
import json
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from api.auth import create_token
from storage.db import transaction
from storage.runtime import Runtime
from tests.api.conftest import Tokens
from tests.fixtures import audit_data as ad
from tests.fixtures.cli import Invoke

UNIT = "城管一中队"
FORMULA = '=HYPERLINK("http://evil.example/","x")'


@pytest.fixture
def action_a9(runtime: Runtime) -> str:
    with transaction(runtime.sessions) as s:
        ad.action(s, "A9", UNIT, ad.utc(2024, 5, 1, 8), "complete")
    return "action:A9"


def _reviewer_of(runtime: Runtime, unit: str) -> dict[str, str]:
    with transaction(runtime.sessions) as s:
        _row, secret = create_token(s, role="reviewer", name=f"reviewer-of-{unit}", units=[unit], actor="test")
    return {"Authorization": f"Bearer {secret}"}


def test_auditors_change_findings_and_reviewers_read_them(
    client: TestClient, tokens: Tokens, action_a9: str, runtime: Runtime
) -> None:
    auditor, reviewer = tokens.headers("auditor"), _reviewer_of(runtime, UNIT)
    outsider = tokens.headers("reviewer")  # a reviewer of another unit
    body = {"subject": action_a9, "category": "language", "note": FORMULA}
    assert client.post("/api/v1/findings", json=body, headers=reviewer).status_code == 403
    opened = client.post("/api/v1/findings", json=body, headers=auditor)
    assert opened.status_code == 201, opened.text
    fid = opened.json()["id"]
    assert opened.json()["unit"] == UNIT and opened.json()["status"] == "open"

    assert client.post(f"/api/v1/findings/{fid}/close", json={"note": "x"}, headers=reviewer).status_code == 403
    step = client.post(f"/api/v1/findings/{fid}/notes", json={"note": "整改中", "rectifying": True}, headers=auditor)
    assert step.json()["status"] == "rectifying"
    closed = client.post(f"/api/v1/findings/{fid}/close", json={"note": "已整改"}, headers=auditor)
    assert closed.json()["status"] == "closed"
    again = client.post(f"/api/v1/findings/{fid}/waive", json={"reason": "no"}, headers=auditor)
    assert again.status_code == 409 and again.json()["error"]["code"] == "finding_status"

    refused = client.get(f"/api/v1/findings/{fid}", headers=outsider)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "approval_required"
    shown = client.get(f"/api/v1/findings/{fid}", headers=reviewer).json()
    assert [h["change"] for h in shown["history"]] == ["opened", "rectifying", "close"]
    listed = client.get("/api/v1/findings", params={"unit": UNIT, "status": "closed"}, headers=reviewer).json()
    assert [f["id"] for f in listed["findings"]] == [fid]
    assert client.get("/api/v1/findings", params={"status": "gone"}, headers=reviewer).status_code == 422
    assert client.get("/api/v1/findings", params={"kind": "nope"}, headers=reviewer).json()["error"]["code"] == (
        "bad_kind"
    )
    assert client.get("/api/v1/findings/999999", headers=reviewer).status_code == 404


def test_bad_bodies_are_clear_errors_and_store_nothing(client: TestClient, tokens: Tokens, action_a9: str) -> None:
    auditor = tokens.headers("auditor")
    for body in (
        {"subject": "camera:1", "category": "c", "note": "n"},
        {"subject": "action:NOPE", "category": "c", "note": "n"},
        {"subject": action_a9, "category": "c", "note": ""},
    ):
        response = client.post("/api/v1/findings", json=body, headers=auditor)
        assert response.status_code in (404, 422) and response.json()["error"]["code"], body
    assert client.get("/api/v1/findings", headers=auditor).json()["findings"] == []


def test_ledger_downloads_keep_the_unit_name_and_the_formula_stays_text(
    client: TestClient, tokens: Tokens, action_a9: str
) -> None:
    auditor = tokens.headers("auditor")
    body = {"subject": action_a9, "category": "uniform", "note": FORMULA}
    assert client.post("/api/v1/findings", json=body, headers=auditor).status_code == 201
    xlsx = client.get("/api/v1/findings", params={"unit": UNIT, "format": "xlsx"}, headers=auditor)
    disposition = xlsx.headers["content-disposition"]
    assert f"filename*=UTF-8''{quote('工作台账-' + UNIT)}" in disposition and 'filename="' in disposition
    disposition.encode("ascii")  # the header itself stays ASCII
    ws = load_workbook(io.BytesIO(xlsx.content))["工作台账 findings"]
    [cell] = [c for row in ws.iter_rows() for c in row if c.value == FORMULA]
    assert cell.data_type == "s"
    text = client.get("/api/v1/findings", params={"format": "csv"}, headers=auditor).content.decode("utf-8-sig")
    assert "'" + FORMULA.replace('"', '""') in text


def test_cli_findings(runtime: Runtime, cli: Invoke, action_a9: str, tmp_path: Path) -> None:
    opened = cli(
        "findings", "open", "--subject", action_a9, "--category", "uniform", "--note", "未戴帽", "--format", "json"
    )
    assert opened.exit_code == 0, opened.output
    fid = str(json.loads(opened.stdout)["id"])
    assert cli("findings", "note", fid, "--note", "已通知", "--rectifying").exit_code == 0
    assert cli("findings", "close", fid, "--note", "已整改").exit_code == 0
    shown = json.loads(cli("findings", "show", fid, "--format", "json").stdout)
    assert [h["status"] for h in shown["history"]] == ["open", "rectifying", "closed"]
    refused = cli("findings", "waive", fid, "--reason", "x")
    assert refused.exit_code == 2 and "closed" in refused.output
    assert cli("findings", "show", "999999").exit_code == 2
    listed = json.loads(cli("findings", "list", "--status", "closed", "--format", "json").stdout)
    assert [f["id"] for f in listed["findings"]] == [int(fid)]
    out = tmp_path / "台账.xlsx"
    assert cli("findings", "list", "--unit", UNIT, "--format", "xlsx", "--out", str(out)).exit_code == 0
    assert load_workbook(out).sheetnames == ["工作台账 findings", "按单位 per unit"]
    assert cli("findings", "list", "--status", "nope").exit_code == 2
    assert cli("findings", "list").exit_code == 0


def test_a_reviewer_of_several_units_naming_none_gets_all_of_theirs(
    client: TestClient, tokens: Tokens, action_a9: str, runtime: Runtime
) -> None:
    """The same rule as the missing report (``report_units``), where a 422 "name one of your units" used to be."""
    with transaction(runtime.sessions) as s:
        ad.action(s, "B1", "U1", ad.utc(2024, 5, 1, 9), "complete")
        ad.action(s, "C1", "其他中队", ad.utc(2024, 5, 1, 10), "complete")
        _row, secret = create_token(s, role="reviewer", name="two-units", units=[UNIT, "U1"], actor="test")
    auditor, reviewer = tokens.headers("auditor"), {"Authorization": f"Bearer {secret}"}
    for subject in (action_a9, "action:B1", "action:C1"):
        body = {"subject": subject, "category": "uniform", "note": "n"}
        assert client.post("/api/v1/findings", json=body, headers=auditor).status_code == 201
    listed = client.get("/api/v1/findings", headers=reviewer)
    assert listed.status_code == 200 and [f["subject"] for f in listed.json()["findings"]] == [action_a9, "action:B1"]
    download = client.get("/api/v1/findings", params={"format": "csv"}, headers=reviewer)
    assert f"filename*=UTF-8''{quote('工作台账-U1+' + UNIT)}" in download.headers["content-disposition"]
