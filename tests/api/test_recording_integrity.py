"""A recording that failed fixity is not served as if intact: 409 with the finding, unless a reviewer insists."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from audit.fixity import run_checks, select_targets
from storage.db import transaction
from storage.local_store import LocalStore
from storage.objects import object_key
from storage.runtime import Runtime
from tests.api.conftest import Ingested, Tokens, events


def _damage_and_check(runtime: Runtime, recording: Ingested) -> bytes:
    store = runtime.store
    assert isinstance(store, LocalStore)
    path = store.root / object_key(recording.sha256)
    data = bytearray(path.read_bytes())
    data[50] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))
    with transaction(runtime.sessions) as s:
        targets = select_targets(s)
    report = run_checks(runtime.sessions, runtime.store, runtime.settings, targets, "test")
    assert [c.result for c in report.findings] == ["mismatch"]
    return bytes(data)


def test_a_damaged_recording_is_409_with_the_finding(
    client: TestClient, tokens: Tokens, runtime: Runtime, recording: Ingested
) -> None:
    _damage_and_check(runtime, recording)

    response = client.get(f"/api/v1/recordings/{recording.id}/content", headers=tokens.headers("reviewer"))

    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "integrity_failed"
    assert "mismatch" in error["message"] and "accept_damaged" in error["message"]
    assert events(runtime, "evidence.read") == []  # nothing was read
    meta = client.get(f"/api/v1/recordings/{recording.id}", headers=tokens.headers("reviewer")).json()
    assert meta["fixity_ok"] is False and meta["fixity_checked_at"]


def test_a_reviewer_may_read_it_anyway_and_that_is_audited(
    client: TestClient, tokens: Tokens, runtime: Runtime, recording: Ingested
) -> None:
    damaged = _damage_and_check(runtime, recording)

    response = client.get(
        f"/api/v1/recordings/{recording.id}/content",
        params={"accept_damaged": "true"},
        headers=tokens.headers("reviewer"),
    )

    assert response.status_code == 200 and response.content == damaged
    [read] = events(runtime, "evidence.read")
    details = json.loads(read.details)
    assert read.actor == "token:reviewer-1" and details["accept_damaged"] is True
    assert "failed its fixity check" in details["finding"]


def test_an_auditor_cannot_ask_for_damaged_content(
    client: TestClient, tokens: Tokens, runtime: Runtime, recording: Ingested
) -> None:
    _damage_and_check(runtime, recording)
    response = client.get(
        f"/api/v1/recordings/{recording.id}/content",
        params={"accept_damaged": "true"},
        headers=tokens.headers("auditor"),
    )
    assert response.status_code == 403 and events(runtime, "evidence.read") == []


def test_an_intact_recording_is_served_without_the_flag(
    client: TestClient, tokens: Tokens, runtime: Runtime, recording: Ingested
) -> None:
    with transaction(runtime.sessions) as s:
        targets = select_targets(s)
    assert run_checks(runtime.sessions, runtime.store, runtime.settings, targets, "test").findings == []
    response = client.get(f"/api/v1/recordings/{recording.id}/content", headers=tokens.headers("reviewer"))
    assert response.status_code == 200 and response.content == recording.path.read_bytes()
    [read] = events(runtime, "evidence.read")
    assert "accept_damaged" not in json.loads(read.details)
