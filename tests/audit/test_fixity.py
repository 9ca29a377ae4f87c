"""``bwc fixity``: re-hash objects on the local store and on S3, name mismatches and missing objects (SPEC §5)."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import select

from audit.fixity import run_checks, sample_forever, select_targets
from audit.reports import missing_report
from storage.basics import utcnow
from storage.db import transaction
from storage.models import AuditEvent, Recording
from tests.fixtures.evidence import Case, cli_for, reasons


def _fixity_events(case: Case) -> list[tuple[str, dict[str, object]]]:
    with case.rt.sessions() as s:
        rows = s.execute(select(AuditEvent.subject, AuditEvent.details).where(AuditEvent.kind == "fixity.checked"))
        return [(subject, json.loads(details)) for subject, details in rows]


def test_a_healthy_store_passes_and_every_result_is_an_event(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    bwc = cli_for(case.rt, monkeypatch)
    assert case.action().verdict == "complete"

    result = bwc("fixity", "--all", "--format", "json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["checked"] == 4 and report["counts"] == {"ok": 4} and report["findings"] == []
    subjects = sorted(subject for subject, details in _fixity_events(case) if details["result"] == "ok")
    assert subjects == sorted([f"recording:{r.id}" for r in case.recs.values()] + [f"sidecar:{case.sidecar.id}"])
    with case.rt.sessions() as s:
        assert all(r.fixity_ok is True and r.fixity_checked_at for r in s.scalars(select(Recording)))


def test_a_flipped_byte_and_a_deleted_object_are_named_and_judged(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    bwc = cli_for(case.rt, monkeypatch)
    flipped, deleted = case.recs["DEV-A"], case.recs["DEV-C"]
    case.flip_byte(flipped.sha256)
    case.delete(deleted.sha256)

    result = bwc("fixity", "--all")

    assert result.exit_code == 1, result.output
    assert f"mismatch: recording:{flipped.id}" in result.output
    assert f"missing: recording:{deleted.id}" in result.output
    assert "4 objects checked, 2 failed" in result.output
    results = {subject: details["result"] for subject, details in _fixity_events(case)}
    assert results == {
        f"recording:{flipped.id}": "mismatch",
        f"recording:{case.recs['DEV-B'].id}": "ok",
        f"recording:{deleted.id}": "missing",
        f"sidecar:{case.sidecar.id}": "ok",
    }
    # the action filmed by the damaged camera is re-judged at once: integrity, and so incomplete
    action = case.action()
    assert {"code": "integrity", "device": "DEV-A", "recording": flipped.id} in action.reasons
    assert action.verdict == "incomplete"
    with case.rt.sessions() as s:
        report = missing_report(s, case.rt.settings, None, None, None, utcnow())
    [listed] = report["actions"]
    assert listed["action_id"] == "A-1" and "integrity" in {r["code"] for r in listed["reasons"]}


def test_restored_bytes_pass_again_and_the_verdict_recovers(case: Case) -> None:
    rec = case.recs["DEV-B"]
    good = case.object_bytes(rec.sha256)
    case.flip_byte(rec.sha256, offset=7)
    rt = case.rt
    with transaction(rt.sessions) as s:
        targets = select_targets(s)
    assert [c.result for c in run_checks(rt.sessions, rt.store, rt.settings, targets, "test").findings] == ["mismatch"]
    assert "integrity" in {r["code"] for r in reasons(case)}

    case.replace(rec.sha256, good)
    assert run_checks(rt.sessions, rt.store, rt.settings, targets, "test").findings == []

    assert case.action().verdict == "complete" and reasons(case) == []


def test_a_sample_takes_the_least_recently_checked_first(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    bwc = cli_for(case.rt, monkeypatch)
    first = bwc("fixity", "--sample", "2", "--format", "json")
    second = bwc("fixity", "--sample", "2", "--format", "json")
    recent = bwc("fixity", "--sample", "5", "--older-than", "1", "--format", "json")

    assert (first.exit_code, second.exit_code, recent.exit_code) == (0, 0, 0)
    assert (json.loads(first.stdout)["checked"], json.loads(second.stdout)["checked"]) == (2, 2)
    subjects = [subject for subject, _ in _fixity_events(case)]
    # the second sample takes the two objects the first did not reach
    everything = {f"recording:{r.id}" for r in case.recs.values()} | {f"sidecar:{case.sidecar.id}"}
    assert len(subjects) == 4 and set(subjects) == everything
    assert json.loads(recent.stdout)["checked"] == 0  # everything was checked within the last day


def test_a_damaged_sidecar_is_a_finding_of_its_own(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    bwc = cli_for(case.rt, monkeypatch)
    case.flip_byte(case.sidecar.sha256, offset=3)

    result = bwc("fixity", "--all", "--format", "json")

    assert result.exit_code == 1
    [finding] = json.loads(result.stdout)["findings"]
    assert (finding["kind"], finding["id"], finding["result"]) == ("sidecar", case.sidecar.id, "mismatch")
    assert case.action().verdict == "complete"  # the footage itself is intact


def test_fixity_needs_all_or_sample(case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    bwc = cli_for(case.rt, monkeypatch)
    assert bwc("fixity").exit_code == 2
    assert bwc("fixity", "--all", "--sample", "3").exit_code == 2
    assert _fixity_events(case) == []


def test_the_run_schedule_checks_one_object_per_turn(case: Case) -> None:
    rt = case.rt
    settings = rt.settings.model_copy(update={"fixity_sample_per_hour": 60})
    stop = threading.Event()
    intervals: list[float] = []

    def wait(seconds: float) -> bool:  # two turns, then stop: the schedule's clock, without waiting
        intervals.append(seconds)
        if len(intervals) > 2:
            stop.set()
        return stop.is_set()

    sample_forever(rt.sessions, rt.store, settings, stop, wait)

    assert intervals == [60.0, 60.0, 60.0]
    assert len(_fixity_events(case)) == 2
