"""Unit scope and approvals (SPEC §15), through the API and the web pages, on SQLite and PostgreSQL.

The scene: three real recordings; action A-1 (unit U1, case C-U1) is filmed by DEV-1, action A-2 (unit U2,
case C-U2) by DEV-2, DEV-3 films nothing anyone asked for. Bob's reviewer token carries U1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.auth import create_token
from audit.access import grant_access
from storage.basics import utcnow
from storage.db import transaction
from storage.runtime import Runtime
from tests.api.conftest import Ingested, Tokens, events, ingest
from tests.api.web_client import signed_in
from tests.fixtures.audit_log import new_signer, pem
from tests.fixtures.media import MediaFactory


@dataclass
class Scene:
    a: Ingested  # DEV-1, linked to A-1 (U1)
    b: Ingested  # DEV-2, linked to A-2 (U2)
    c: Ingested  # DEV-3, linked to nothing, no unit: unclaimed, every reviewer sees it
    bob: str  # reviewer, U1
    carol: str  # reviewer, U2

    @staticmethod
    def auth(secret: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret}"}


def _action(action_id: str, case: str, unit: str, device: str) -> dict[str, Any]:
    return {
        "action_id": action_id,
        "case_number": case,
        "unit": unit,
        "started_at": "2024-05-01T08:00:00Z",
        "ended_at": "2024-05-01T08:00:02Z",
        "devices": [device],
    }


@pytest.fixture
def scene(client: TestClient, tokens: Tokens, runtime: Runtime, media: MediaFactory, tmp_path: Path) -> Scene:
    recs = {
        dev: ingest(runtime, media.make(tmp_path / "cam" / f"{dev}_P1_20240501080000_0001.mp4", seconds=2, tone=tone))
        for dev, tone in (("DEV-1", 440), ("DEV-2", 550), ("DEV-3", 660))
    }
    for body in (_action("A-1", "C-U1", "U1", "DEV-1"), _action("A-2", "C-U2", "U2", "DEV-2")):
        response = client.post("/api/v1/actions", json=body, headers=tokens.headers("admin"))
        assert response.status_code == 200, response.text
    with transaction(runtime.sessions) as s:
        _t, bob = create_token(s, role="reviewer", name="bob", units=["U1"], actor="test")
        _t, carol = create_token(s, role="reviewer", name="carol", units=["U2"], actor="test")
    return Scene(recs["DEV-1"], recs["DEV-2"], recs["DEV-3"], bob, carol)


@pytest.fixture(autouse=True)
def signing_key(runtime: Runtime) -> None:
    """Exports sign with the deployment's key: the embedded default's, as ``bwc init`` would make it."""
    key = runtime.settings.signing_key_path
    assert key is not None
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_text(pem(new_signer(runtime.settings.audit_origin)))


def _denied(response: Any) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "approval_required"


def _grant(client: TestClient, tokens: Tokens, case: str, hours: float = 2) -> dict[str, Any]:
    body = {"to": "bob", "case_number": case, "approver": "Head of U2", "reason": "joint review", "hours": hours}
    response = client.post("/api/v1/access/grants", json=body, headers=tokens.headers("admin"))
    assert response.status_code == 201, response.text
    grant: dict[str, Any] = response.json()
    return grant


def test_api_reviewer_sees_exactly_their_units(client: TestClient, tokens: Tokens, scene: Scene) -> None:
    bob = scene.auth(scene.bob)
    listed = client.get("/api/v1/recordings", headers=bob).json()["recordings"]
    assert [r["id"] for r in listed] == [scene.a.id, scene.c.id]
    assert client.get(f"/api/v1/recordings/{scene.a.id}", headers=bob).status_code == 200
    assert client.get(f"/api/v1/recordings/{scene.c.id}", headers=bob).status_code == 200
    content = client.get(f"/api/v1/recordings/{scene.a.id}/content", headers=bob)
    assert content.status_code == 200 and content.content == scene.a.path.read_bytes()
    _denied(client.get(f"/api/v1/recordings/{scene.b.id}", headers=bob))
    _denied(client.get(f"/api/v1/recordings/{scene.b.id}/content", headers=bob))
    assert [a["action_id"] for a in client.get("/api/v1/actions", headers=bob).json()["actions"]] == ["A-1"]
    assert client.get("/api/v1/actions/A-1", headers=bob).status_code == 200
    _denied(client.get("/api/v1/actions/A-2", headers=bob))
    assert client.get("/api/v1/cases/C-U1", headers=bob).json()["recordings"][0]["id"] == scene.a.id
    _denied(client.get("/api/v1/cases/C-U2", headers=bob))
    _denied(client.get("/api/v1/cases/C-U2/export", headers=bob))
    assert client.get("/api/v1/cases/NO-SUCH", headers=bob).status_code == 404  # unknown is still 404
    report = client.get("/api/v1/reports/missing", headers=bob).json()
    assert {u["unit"] for u in report["units"]} == {"U1"}
    assert {a["action_id"] for a in report["actions"]} <= {"A-1"}
    _denied(client.get("/api/v1/reports/missing?unit=U2", headers=bob))
    # the auditor (and admin) see everything
    auditor = tokens.headers("auditor")
    ids = {r["id"] for r in client.get("/api/v1/recordings", headers=auditor).json()["recordings"]}
    assert ids == {scene.a.id, scene.b.id, scene.c.id}
    assert client.get("/api/v1/cases/C-U2", headers=auditor).status_code == 200
    assert {u["unit"] for u in client.get("/api/v1/reports/missing", headers=auditor).json()["units"]} == {"U1", "U2"}


def test_reviewer_cannot_link_another_units_recording_into_their_scope(
    client: TestClient, tokens: Tokens, scene: Scene
) -> None:
    bob, carol = scene.auth(scene.bob), scene.auth(scene.carol)
    _denied(client.post(f"/api/v1/actions/A-1/links/{scene.b.id}", headers=bob))
    _denied(client.post(f"/api/v1/actions/A-2/links/{scene.a.id}", headers=bob))
    _denied(client.get(f"/api/v1/recordings/{scene.b.id}", headers=bob))  # still outside
    # claiming unclaimed footage is what reviewers do; once claimed by U1 it is out of U2's sight
    assert client.get(f"/api/v1/recordings/{scene.c.id}", headers=carol).status_code == 200
    assert client.post(f"/api/v1/actions/A-1/links/{scene.c.id}", headers=bob).status_code == 201
    _denied(client.get(f"/api/v1/recordings/{scene.c.id}", headers=carol))


def test_grant_opens_one_case_and_every_use_is_audited(
    client: TestClient, tokens: Tokens, runtime: Runtime, scene: Scene
) -> None:
    bob = scene.auth(scene.bob)
    grant = _grant(client, tokens, "C-U2")
    assert grant["state"] == "active" and grant["holder"] == "bob"
    case = client.get("/api/v1/cases/C-U2", headers=bob)
    assert case.status_code == 200 and [r["id"] for r in case.json()["recordings"]] == [scene.b.id]
    content = client.get(f"/api/v1/recordings/{scene.b.id}/content", headers=bob)
    assert content.status_code == 200 and content.content == scene.b.path.read_bytes()
    assert {r["id"] for r in client.get("/api/v1/recordings", headers=bob).json()["recordings"]} == {
        scene.a.id,
        scene.b.id,
        scene.c.id,
    }
    export = client.get("/api/v1/cases/C-U2/export", headers=bob)
    assert export.status_code == 200 and export.content[:2] == b"PK"
    _denied(_carol_other(client, scene))

    subject = f"grant:{grant['id']}"
    [granted] = [e for e in events(runtime, "access.granted") if e.subject == subject]
    assert json.loads(granted.details)["approver"] == "Head of U2" and granted.actor == "token:admin-1"
    uses = [json.loads(e.details) for e in events(runtime, "access.grant_used") if e.subject == subject]
    assert {u["what"] for u in uses} == {"cases.read", "recordings.content", "cases.export"}
    assert {u["holder"] for u in uses} == {"bob"}
    [read] = [e for e in events(runtime, "evidence.read") if e.subject == f"recording:{scene.b.id}"]
    assert read.actor == "token:bob" and json.loads(read.details)["grants"] == [grant["id"]]
    # reading bob's own unit's evidence relies on no grant and leaves no use
    client.get(f"/api/v1/recordings/{scene.a.id}/content", headers=bob)
    assert len([e for e in events(runtime, "access.grant_used") if e.subject == subject]) == len(uses)

    revoked = client.delete(f"/api/v1/access/grants/{grant['id']}", headers=tokens.headers("admin"))
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    _denied(client.get("/api/v1/cases/C-U2", headers=bob))
    _denied(client.get(f"/api/v1/recordings/{scene.b.id}/content", headers=bob))
    [gone] = [e for e in events(runtime, "access.revoked") if e.subject == subject]
    assert gone.actor == "token:admin-1"
    again = client.delete(f"/api/v1/access/grants/{grant['id']}", headers=tokens.headers("admin"))
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_revoked"


def _carol_other(client: TestClient, scene: Scene) -> Any:
    """Carol (U2) is not helped by Bob's grant, and sees none of U1."""
    return client.get("/api/v1/cases/C-U1", headers=scene.auth(scene.carol))


def test_grant_expires(client: TestClient, tokens: Tokens, runtime: Runtime, scene: Scene) -> None:
    past = utcnow() - timedelta(hours=3)
    with transaction(runtime.sessions) as s:
        grant = grant_access(
            s, holder="bob", case_number="C-U2", approver="Head", reason="r", hours=1, actor="test", now=past
        )
        grant_id = grant.id
    _denied(client.get("/api/v1/cases/C-U2", headers=scene.auth(scene.bob)))
    listed = client.get("/api/v1/access/grants", headers=tokens.headers("admin")).json()["grants"]
    assert [(g["id"], g["state"]) for g in listed] == [(grant_id, "expired")]
    assert client.get("/api/v1/access/grants?active=true", headers=tokens.headers("admin")).json()["grants"] == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"to": "nobody", "case_number": "C-U2"}, 404, "no_holder"),
        ({"to": "bob", "case_number": "NO-SUCH"}, 404, "no_case"),
        ({"to": "auditor-1", "case_number": "C-U2"}, 422, "holder_not_scoped"),
        ({"to": "bob", "case_number": "C-U2", "hours": 0}, 422, "validation_error"),
        ({"to": "bob", "case_number": "C-U2", "hours": 100000}, 422, "validation_error"),
        ({"to": "bob", "case_number": "C-U2", "approver": " "}, 422, "bad_approver"),
    ],
)
def test_bad_grants_are_refused_and_nothing_is_kept(
    client: TestClient, tokens: Tokens, runtime: Runtime, scene: Scene, body: dict[str, Any], status: int, code: str
) -> None:
    full = {"approver": "Head", "reason": "why"} | body
    response = client.post("/api/v1/access/grants", json=full, headers=tokens.headers("admin"))
    assert response.status_code == status, response.text
    if code != "validation_error":
        assert response.json()["error"]["code"] == code
    assert client.get("/api/v1/access/grants", headers=tokens.headers("admin")).json()["grants"] == []
    assert events(runtime, "access.granted") == []


def _login(client: TestClient, secret: str) -> None:
    client.cookies.clear()
    signed_in(client, secret)


def test_pages_show_a_reviewer_exactly_their_units_plus_grants(
    client: TestClient, tokens: Tokens, scene: Scene
) -> None:
    _login(client, scene.bob)
    index = client.get("/")
    assert index.status_code == 200
    assert f"/recordings/{scene.a.id}/play" in index.text
    assert f"/recordings/{scene.b.id}/play" not in index.text and f"/recordings/{scene.c.id}/play" in index.text
    assert "Ingest failures" not in index.text  # the API does not show reviewers ingest failures either
    search = client.get("/cases")
    assert "A-1" in search.text and "A-2" not in search.text
    assert client.get("/cases/C-U1").status_code == 200
    for url in ("/cases/C-U2", "/actions/A-2", f"/recordings/{scene.b.id}/play", "/exports/C-U2"):
        page = client.get(url)
        assert page.status_code == 403, url
        assert "Approval required" in page.text, url
    content = client.get(f"/recordings/{scene.b.id}/content")  # a page route: its errors are pages too
    assert content.status_code == 403 and "Approval required" in content.text
    zh = client.get("/cases/C-U2?lang=zh")
    assert zh.status_code == 403 and "需要审批" in zh.text
    report = client.get("/reports/missing?from=2024-05-01&to=2024-05-01")
    assert report.status_code == 200 and "A-2" not in report.text
    assert client.get("/reports/missing?unit=U2").status_code == 403

    _grant(client, tokens, "C-U2")
    assert client.get("/cases/C-U2").status_code == 200
    assert client.get("/actions/A-2").status_code == 200
    assert client.get(f"/recordings/{scene.b.id}/play").status_code == 200
    played = client.get(f"/recordings/{scene.b.id}/content")
    assert played.status_code == 200 and played.content == scene.b.path.read_bytes()
    assert client.get("/exports/C-U2").status_code == 200

    _login(client, tokens.secrets["auditor"])
    index = client.get("/")
    assert f"/recordings/{scene.b.id}" in index.text or "DEV-2" in index.text
    assert "Ingest failures" in index.text
    assert client.get("/cases/C-U2").status_code == 200


def test_cli_token_units_and_access_commands(cli: Any, runtime: Runtime, scene: Scene) -> None:
    made = cli("token", "create", "--role", "reviewer", "--name", "dan", "--unit", "U2", "--unit", "U1")
    assert made.exit_code == 0, made.output
    listed = json.loads(cli("token", "list", "--format", "json").stdout)
    assert [t["units"] for t in listed if t["name"] == "dan"] == [["U1", "U2"]]
    refused = cli("token", "create", "--role", "auditor", "--name", "eve", "--unit", "U1")
    assert refused.exit_code == 2 and "reviewer tokens only" in refused.output
    granted = cli(
        "access", "grant", "--to", "bob", "--case", "C-U2", "--approver", "Head", "--reason", "r", "--format", "json"
    )
    assert granted.exit_code == 0, granted.output
    grant_id = json.loads(granted.stdout)["id"]
    rows = json.loads(cli("access", "list", "--format", "json").stdout)
    assert [(r["id"], r["state"]) for r in rows] == [(grant_id, "active")]
    assert cli("access", "revoke", str(grant_id)).exit_code == 0
    again = cli("access", "revoke", str(grant_id))
    assert again.exit_code == 2 and "revoked" in again.output
    assert json.loads(cli("access", "list", "--format", "json").stdout)[0]["state"] == "revoked"
    unknown = cli("access", "grant", "--to", "nobody", "--case", "C-U2", "--approver", "H", "--reason", "r")
    assert unknown.exit_code == 2 and "no live token named 'nobody'" in unknown.output


def test_a_reviewer_of_several_units_gets_all_of_theirs_in_the_missing_report(
    client: TestClient, runtime: Runtime, scene: Scene
) -> None:
    with transaction(runtime.sessions) as s:
        _row, both = create_token(s, role="reviewer", name="dora", units=["U1", "U2"], actor="test")
    report = client.get("/api/v1/reports/missing", headers=Scene.auth(both))
    assert report.status_code == 200, report.text
    assert {u["unit"] for u in report.json()["units"]} == {"U1", "U2"}
    assert report.json()["unit"] == "U1, U2"
    only = client.get("/api/v1/reports/missing?unit=U2", headers=Scene.auth(both)).json()
    assert {u["unit"] for u in only["units"]} == {"U2"}
