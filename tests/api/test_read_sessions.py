"""GET routes read in reading transactions: they answer while a writer holds its transaction open."""

from __future__ import annotations

from fastapi.testclient import TestClient

from storage.db import transaction
from storage.events import lock_event_log
from storage.models import Unit
from storage.runtime import Runtime
from tests.api.conftest import Ingested, Tokens


def test_reads_answer_while_a_writer_holds_the_lock(
    runtime: Runtime, client: TestClient, tokens: Tokens, recording: Ingested
) -> None:
    reviewer, auditor = tokens.headers("reviewer"), tokens.headers("auditor")
    with transaction(runtime.sessions) as s:
        lock_event_log(s)  # what a long writer holds (SQLite: the write lock since BEGIN IMMEDIATE)
        s.add(Unit(code="U-HELD"))
        s.flush()
        # each of these waited for the writer before (its own BEGIN IMMEDIATE) and failed after the busy timeout
        listed = client.get("/api/v1/recordings", headers=reviewer)
        assert listed.status_code == 200, listed.text
        assert [r["id"] for r in listed.json()["recordings"]] == [recording.id]
        assert client.get(f"/api/v1/recordings/{recording.id}", headers=reviewer).json()["sha256"] == recording.sha256
        assert client.get("/api/v1/actions", headers=reviewer).json() == {"actions": []}
        assert client.get("/api/v1/ingest/failures", headers=auditor).json() == {"failures": []}
        report = client.get("/api/v1/reports/missing", headers=auditor)
        assert report.status_code == 200, report.text
        assert [u["id"] for u in report.json()["unclaimed"]] == [recording.id]
    with transaction(runtime.sessions) as s:
        assert s.query(Unit).filter_by(code="U-HELD").count() == 1  # the writer committed afterwards
