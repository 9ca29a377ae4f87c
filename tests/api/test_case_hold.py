"""Case routes: ``POST /cases/{n}/hold|release`` (admin) as the CLI does them, and the streamed ``/export``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from audit.package_verify import verify_package
from tests.api.conftest import Tokens, events, make_tokens
from tests.fixtures.audit_log import new_signer, pem
from tests.fixtures.evidence import CASE, Case


@pytest.fixture
def case_client(case: Case) -> Iterator[TestClient]:
    with TestClient(create_app(case.rt.settings)) as c:
        yield c


def test_an_admin_holds_and_releases_a_case(case: Case, case_client: TestClient) -> None:
    tokens: Tokens = make_tokens(case.rt)
    admin = tokens.headers("admin")
    a = case.recs["DEV-A"].id

    held = case_client.post(f"/api/v1/cases/{CASE}/hold", json={"reason": "court order"}, headers=admin)

    assert held.status_code == 200, held.text
    assert held.json()["legal_hold"] is True and a in held.json()["recordings"]
    shown = case_client.get(f"/api/v1/cases/{CASE}", headers=tokens.headers("reviewer")).json()
    assert shown["legal_hold"]["reason"] == "court order" and shown["legal_hold"]["held_by"] == "token:admin-1"
    rec = case_client.get(f"/api/v1/recordings/{a}", headers=tokens.headers("reviewer")).json()
    assert rec["legal_hold"] is True and rec["retention_until"]

    released = case_client.post(f"/api/v1/cases/{CASE}/release", json={"reason": "closed"}, headers=admin)
    assert released.status_code == 200 and released.json()["legal_hold"] is False
    assert case_client.get(f"/api/v1/cases/{CASE}", headers=admin).json()["legal_hold"] is None


def test_bad_hold_requests_are_clear_errors(case: Case, case_client: TestClient) -> None:
    tokens = make_tokens(case.rt)
    admin = tokens.headers("admin")
    no_reason = case_client.post(f"/api/v1/cases/{CASE}/hold", json={"reason": ""}, headers=admin)
    unknown = case_client.post("/api/v1/cases/NOPE/hold", json={"reason": "x"}, headers=admin)
    reviewer = case_client.post(f"/api/v1/cases/{CASE}/hold", json={"reason": "x"}, headers=tokens.headers("reviewer"))
    assert (no_reason.status_code, unknown.status_code, reviewer.status_code) == (422, 404, 403)
    assert unknown.json()["error"]["code"] == "no_case"
    release = case_client.post(f"/api/v1/cases/{CASE}/release", json={"reason": "x"}, headers=admin)
    assert release.status_code == 409 and release.json()["error"]["code"] == "not_held"


def test_a_reviewer_downloads_the_export_streamed_and_it_verifies(
    case: Case, case_client: TestClient, tmp_path: Path
) -> None:
    key = case.rt.settings.signing_key_path
    assert key is not None
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_text(pem(new_signer(case.rt.settings.audit_origin)))
    tokens = make_tokens(case.rt)
    out = tmp_path / "download.zip"

    with case_client.stream("GET", f"/api/v1/cases/{CASE}/export", headers=tokens.headers("reviewer")) as response:
        assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
        assert "content-length" not in response.headers  # streamed as written, not spooled first
        with open(out, "wb") as f:
            for chunk in response.iter_bytes():
                f.write(chunk)

    report = verify_package(out)
    assert report.ok, report.findings
    [(actor, details)] = [(e.actor, json.loads(e.details)) for e in events(case.rt, "case.exported")]
    assert actor == "token:reviewer-1" and sorted(details["recordings"]) == sorted(
        [case.recs["DEV-A"].id, case.recs["DEV-B"].id]
    )
    missing = case_client.get("/api/v1/cases/NOPE/export", headers=tokens.headers("reviewer"))
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "no_case"
