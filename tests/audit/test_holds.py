"""Legal holds (SPEC §5): ``bwc case hold|release``, every recording of the case now and later linked, S3 holds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from sqlalchemy import func, select

from audit.imports import import_actions
from config.settings import Settings
from ingest.pipeline import ingest_file
from storage.db import transaction
from storage.models import AuditEvent, CaseHold, Recording
from storage.runtime import Runtime
from storage.s3_store import S3Store
from storage.shapes import recording_json
from tests.fixtures.evidence import CASE, Case, cli_for, ingest_case, runtime_on
from tests.fixtures.media import MediaFactory
from tests.fixtures.s3 import raw_s3_client


def _recordings(rt: Runtime) -> dict[int, dict[str, Any]]:
    with rt.sessions() as s:
        return {r.id: recording_json(r) for r in s.scalars(select(Recording))}


def _events(rt: Runtime, kind: str) -> list[tuple[str, dict[str, Any]]]:
    with rt.sessions() as s:
        rows = s.execute(select(AuditEvent.subject, AuditEvent.details).where(AuditEvent.kind == kind))
        return [(subject, json.loads(details)) for subject, details in rows]


def _s3_hold(rt: Runtime, sha256: str) -> str:
    store = rt.store
    assert isinstance(store, S3Store)
    client = raw_s3_client(str(store.location.endpoint_url))
    status: str = client.get_object_legal_hold(Bucket=store.bucket, Key=store.key(sha256))["LegalHold"].get("Status")
    return status or "never set"


@pytest.fixture
def locked_case(settings: Settings, s3_locked_bucket_url: str, media: MediaFactory, tmp_path: Path) -> Iterator[Case]:
    rt = runtime_on(settings, s3_locked_bucket_url)
    yield ingest_case(rt, media, tmp_path / "card")
    rt.close()


def test_hold_marks_every_recording_of_the_case(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    bwc = cli_for(case.rt, monkeypatch)

    result = bwc("case", "hold", CASE, "--reason", "court order 2024-17")

    assert result.exit_code == 0, result.output
    assert "database only" in result.output  # neither the local store nor a bucket without Object Lock holds
    recs = _recordings(case.rt)
    a, b, c = (case.recs[d].id for d in ("DEV-A", "DEV-B", "DEV-C"))
    assert (recs[a]["legal_hold"], recs[b]["legal_hold"], recs[c]["legal_hold"]) == (True, True, False)
    assert all(r["retention_until"] for r in recs.values())  # every recording shows its retention date
    [(subject, details)] = _events(case.rt, "case.held")
    assert subject == f"case:{CASE}" and details["reason"] == "court order 2024-17"
    assert details["recordings"] == sorted([a, b])


def test_release_lifts_the_hold_and_is_audited(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    bwc = cli_for(case.rt, monkeypatch)
    assert bwc("case", "hold", CASE, "--reason", "trial").exit_code == 0

    result = bwc("case", "release", CASE, "--reason", "verdict final", "--format", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["legal_hold"] is False
    assert not any(r["legal_hold"] for r in _recordings(case.rt).values())
    [(_subject, details)] = _events(case.rt, "case.released")
    assert details["reason"] == "verdict final"
    with case.rt.sessions() as s:
        [row] = s.scalars(select(CaseHold))
        assert row.released_at is not None and row.release_reason == "verdict final"


def test_bad_holds_are_refused_and_change_nothing(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    bwc = cli_for(case.rt, monkeypatch)
    blank = bwc("case", "hold", CASE, "--reason", "  ")
    unknown = bwc("case", "hold", "NO-SUCH-CASE", "--reason", "typo")
    not_held = bwc("case", "release", CASE, "--reason", "nothing to release")
    assert (blank.exit_code, unknown.exit_code, not_held.exit_code) == (2, 2, 2)
    assert "reason" in blank.output and "NO-SUCH-CASE" in unknown.output and "not on hold" in not_held.output
    assert bwc("case", "hold", CASE, "--reason", "first").exit_code == 0
    twice = bwc("case", "hold", CASE, "--reason", "second")
    assert twice.exit_code == 2 and "on hold since" in twice.output
    with case.rt.sessions() as s:
        assert s.scalar(select(func.count(CaseHold.id))) == 1
    assert len(_events(case.rt, "case.held")) == 1


def test_s3_object_lock_holds_recordings_and_sidecars(locked_case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    case, rt = locked_case, locked_case.rt
    bwc = cli_for(rt, monkeypatch)

    result = bwc("case", "hold", CASE, "--reason", "court order", "--format", "json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["store_enforced"] is True
    held = [case.recs["DEV-A"].sha256, case.recs["DEV-B"].sha256, case.sidecar.sha256]
    assert [_s3_hold(rt, sha) for sha in held] == ["ON", "ON", "ON"]
    assert _s3_hold(rt, case.recs["DEV-C"].sha256) == "never set"
    store = rt.store
    assert isinstance(store, S3Store)
    client = raw_s3_client(str(store.location.endpoint_url))
    version = client.head_object(Bucket=store.bucket, Key=store.key(held[0]))["VersionId"]
    with pytest.raises(ClientError):
        client.delete_object(Bucket=store.bucket, Key=store.key(held[0]), VersionId=version)

    assert bwc("case", "release", CASE, "--reason", "closed").exit_code == 0
    assert [_s3_hold(rt, sha) for sha in held] == ["OFF", "OFF", "OFF"]


def test_a_late_docking_recording_joins_the_held_case(
    locked_case: Case, media: MediaFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = locked_case.rt
    assert cli_for(rt, monkeypatch)("case", "hold", CASE, "--reason", "court order").exit_code == 0
    late = media.make(tmp_path / "late" / "DEV-B" / "DEV-B_P1_20240501080001_0002.mp4", seconds=2, tone=770)
    late.with_suffix(".gps").write_text("$GPGGA,080001.00,3114.000,N,12128.000,E,1,08,0.9,10.0,M,,,,*47\n")

    outcome = ingest_file(rt, tmp_path / "late", late, "ST-2")

    assert outcome.status == "stored" and outcome.recording_id and outcome.sha256
    assert _recordings(rt)[outcome.recording_id]["legal_hold"] is True
    assert _s3_hold(rt, outcome.sha256) == "ON"
    [side] = outcome.sidecars
    assert side.status == "stored" and side.sha256 and _s3_hold(rt, side.sha256) == "ON"
    assert (f"recording:{outcome.recording_id}", {"sha256": outcome.sha256}) in _events(rt, "recording.held")


def test_a_recording_another_held_case_claims_stays_held(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    bwc = cli_for(case.rt, monkeypatch)
    other = (
        b"action_id,case_number,unit,started_at,ended_at,officers,devices,location,kind\r\n"
        b"A-2,CASE-OTHER,U1,2024-05-01T08:00:00Z,2024-05-01T08:00:01Z,,DEV-A,Main St,inspection\r\n"
    )
    with transaction(case.rt.sessions) as s:
        assert not import_actions(s, case.rt.settings, other, "test", "other.csv").errors
    assert bwc("case", "hold", CASE, "--reason", "one").exit_code == 0
    assert bwc("case", "hold", "CASE-OTHER", "--reason", "two").exit_code == 0

    assert bwc("case", "release", CASE, "--reason", "done").exit_code == 0

    recs = _recordings(case.rt)
    assert recs[case.recs["DEV-A"].id]["legal_hold"] is True  # CASE-OTHER still holds it
    assert recs[case.recs["DEV-B"].id]["legal_hold"] is False


def test_an_action_import_brings_its_recordings_under_an_existing_hold(
    case: Case, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bwc = cli_for(case.rt, monkeypatch)
    assert bwc("case", "hold", CASE, "--reason", "court order").exit_code == 0
    csv = tmp_path / "more.csv"
    csv.write_text(
        "action_id,case_number,unit,started_at,ended_at,officers,devices,location,kind\n"
        f"A-3,{CASE},U1,2024-05-01T08:00:00Z,2024-05-01T08:00:02Z,,DEV-C,Side St,inspection\n"
    )

    assert bwc("actions", "import", str(csv)).exit_code == 0

    assert _recordings(case.rt)[case.recs["DEV-C"].id]["legal_hold"] is True
