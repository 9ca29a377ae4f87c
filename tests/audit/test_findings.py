"""Findings kept by their causes (SPEC §13), on both databases: a late-docking camera closes its own finding,
the cause's return reopens it, a full recompute catches up, and a person's close is respected."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from audit import linking
from audit.findings import change_by_hand, open_by_hand
from audit.findings_rules import DEFAULT_DUE_DAYS
from storage.basics import utcnow
from storage.db import transaction
from storage.models import Action, AuditEvent, Finding, Recording
from storage.runtime import Runtime
from tests.fixtures import audit_data as ad

T0 = ad.utc(2024, 5, 1, 8, 0)  # long past: a shortfall is incomplete at once, not pending


def _findings(rt: Runtime, subject: str | None = None) -> list[Finding]:
    with rt.sessions() as s:
        query = select(Finding).order_by(Finding.id)
        if subject is not None:
            query = query.where(Finding.subject == subject)
        return list(s.scalars(query))


def _finding_events(rt: Runtime) -> list[tuple[str, dict[str, object]]]:
    with rt.sessions() as s:
        rows = s.execute(select(AuditEvent.kind, AuditEvent.details).where(AuditEvent.kind.like("finding.%")))
        return [(kind, json.loads(details)) for kind, details in rows]


def _two_camera_action(rt: Runtime, action_id: str = "A1") -> int:
    with transaction(rt.sessions) as s:
        row = ad.action(s, action_id, "一大队", T0, "complete", minutes=10, devices=("CAM-A", "CAM-B"), reasons=[])
        linking.on_actions_changed(s, rt.settings, [row.id], "test")
        return row.id


def _dock(rt: Runtime, serial: str, *, received_late: bool = False) -> int:
    with transaction(rt.sessions) as s:
        received = utcnow() if received_late else None
        rec = ad.recording(s, serial, T0 - timedelta(seconds=5), seconds=620, received_at=received)
        linking.on_recordings_changed(s, rt.settings, [rec.id], "test")
        return rec.id


def test_a_late_docking_camera_closes_its_finding_by_itself(runtime: Runtime) -> None:
    rt = runtime
    _two_camera_action(rt)
    found = _findings(rt, "action:A1")
    assert sorted((f.kind, f.status) for f in found) == [("no_footage", "open"), ("shortfall", "open")]
    opened = found[0]
    assert (opened.kind, opened.status, opened.automatic) == ("no_footage", "open", True)
    assert opened.unit is not None and opened.unit.code == "一大队"
    assert opened.due_at - opened.opened_at == timedelta(days=DEFAULT_DUE_DAYS["no_footage"])

    first = _dock(rt, "CAM-A")  # one camera: the no-footage cause is gone, a shortfall remains
    by_kind = {f.kind: f for f in _findings(rt, "action:A1")}
    assert by_kind["no_footage"].status == "closed" and by_kind["no_footage"].closed_at is not None
    assert by_kind["shortfall"].status == "open"

    second = _dock(rt, "CAM-B", received_late=True)  # the late camera docks: the verdict turns complete
    with rt.sessions() as s:
        assert s.scalar(select(Action.verdict).where(Action.action_id == "A1")) == "complete"
    shortfall = {f.kind: f for f in _findings(rt, "action:A1")}["shortfall"]
    assert shortfall.status == "closed" and not shortfall.cause_present
    assert [line["change"] for line in shortfall.history] == ["opened", "closed"]
    # ... and its lateness is a finding of its own, on the recording
    assert [(f.kind, f.status) for f in _findings(rt, f"recording:{second}")] == [("late_upload", "open")]
    assert _findings(rt, f"recording:{first}") == []
    kinds = [kind for kind, _ in _finding_events(rt)]
    assert kinds.count("finding.opened") == 3 and kinds.count("finding.closed") == 2


def test_the_cause_returning_reopens_the_finding(runtime: Runtime) -> None:
    rt = runtime
    _two_camera_action(rt)
    recs = [_dock(rt, "CAM-A"), _dock(rt, "CAM-B")]
    with transaction(rt.sessions) as s:  # a reviewer takes both recordings off: no footage again
        for rid in recs:
            linking.unlink_by_hand(s, rt.settings, "A1", rid, "reviewer")
    no_footage = [f for f in _findings(rt, "action:A1") if f.kind == "no_footage"]
    assert len(no_footage) == 1, "once per subject and kind: the old finding reopens, no second one"
    assert no_footage[0].status == "open" and no_footage[0].closed_at is None
    assert [line["change"] for line in no_footage[0].history] == ["opened", "closed", "reopened"]


def test_a_full_recompute_opens_what_is_missing_and_is_idempotent(runtime: Runtime) -> None:
    rt = runtime
    with transaction(rt.sessions) as s:  # judged before findings existed: incomplete, and no finding yet
        ad.action(s, "OLD", "U1", T0, "incomplete", devices=("X",), reasons=[{"code": "too_few_devices"}])
        ad.action(s, "FINE", "U1", T0, "complete", devices=("Y",))
        ad.recording(s, "Y", T0, seconds=3600)
    settings = rt.settings.model_copy(update={"min_devices": 1})
    linking.recompute_all(rt.sessions, settings, utcnow(), "t")
    assert sorted((f.subject, f.kind) for f in _findings(rt)) == [
        ("action:OLD", "no_footage"),
        ("action:OLD", "shortfall"),
    ]
    events = _finding_events(rt)
    linking.recompute_all(rt.sessions, settings, utcnow(), "t")
    assert _finding_events(rt) == events and len(_findings(rt)) == 2


def test_findings_opened_by_a_full_recompute_are_recorded_as_one_by_one(runtime: Runtime) -> None:
    """Opened in bulk (ids drawn first, rows copied in), each finding still has the unit of its action, its
    one history line and a ``finding.opened`` event naming it with its kind and subject; and a finding
    opened by hand afterwards gets an id and event of its own."""
    rt = runtime
    with transaction(rt.sessions) as s:  # judged before findings existed: the recompute opens them all at once
        for i, unit in enumerate(("一大队", "二大队", "一大队")):
            ad.action(s, f"B{i}", unit, T0, "incomplete", devices=(f"X{i}",), reasons=[{"code": "too_few_devices"}])
        units = {a.action_id: a.unit_id for a in s.scalars(select(Action))}
    settings = rt.settings.model_copy(update={"min_devices": 1})
    now = utcnow()
    linking.recompute_all(rt.sessions, settings, now, "recompute")
    found = _findings(rt)
    assert sorted((f.subject, f.kind) for f in found) == [
        (f"action:B{i}", kind) for i in range(3) for kind in ("no_footage", "shortfall")
    ]
    for f in found:
        assert f.unit_id == units[f.subject.removeprefix("action:")] and f.unit is not None
        assert (f.status, f.automatic, f.cause_present, f.opened_at, f.updated_at) == ("open", True, True, now, now)
        assert f.due_at == now + timedelta(days=DEFAULT_DUE_DAYS[f.kind]) and f.closed_at is None
        assert (f.details, f.category, f.owner) == ({}, None, None)
        assert f.history == [{"at": now.isoformat(), "actor": "recompute", "change": "opened", "status": "open"}]
    with rt.sessions() as s:
        rows = s.execute(
            select(AuditEvent.subject, AuditEvent.details, AuditEvent.actor).where(AuditEvent.kind == "finding.opened")
        )
        events = {subject: (json.loads(details), actor) for subject, details, actor in rows}
    assert events == {
        f"finding:{f.id}": ({"kind": f.kind, "subject": f.subject, "status": "open", "change": "opened"}, "recompute")
        for f in found
    }
    with transaction(rt.sessions) as s:
        by_hand = open_by_hand(s, "action:B0", "uniform", "no cap", "auditor", utcnow(), {})
    assert by_hand.id not in {f.id for f in found}
    with rt.sessions() as s:
        assert (
            s.scalar(select(AuditEvent.kind).where(AuditEvent.subject == f"finding:{by_hand.id}")) == "finding.opened"
        )


def test_a_person_closing_while_the_cause_remains_is_respected(runtime: Runtime) -> None:
    rt = runtime
    _two_camera_action(rt)
    [finding] = [f for f in _findings(rt) if f.kind == "shortfall"]
    with transaction(rt.sessions) as s:
        change_by_hand(s, finding.id, "close", "camera CAM-B was in repair: 设备送修", "auditor", utcnow())
    linking.recompute_all(rt.sessions, rt.settings, utcnow(), "t")
    after = next(f for f in _findings(rt) if f.id == finding.id)
    assert after.status == "closed" and after.cause_present
    assert [line["change"] for line in after.history] == ["opened", "close"]


def test_a_failed_fixity_check_is_a_finding_on_the_recording(runtime: Runtime) -> None:
    rt = runtime
    rid = _dock(rt, "CAM-F")
    with transaction(rt.sessions) as s:
        rec = s.get(Recording, rid)
        assert rec is not None
        rec.fixity_ok = False
        linking.on_recordings_changed(s, rt.settings, [rid], "fixity")
    assert [(f.kind, f.status) for f in _findings(rt, f"recording:{rid}")] == [("fixity_failed", "open")]
    with transaction(rt.sessions) as s:
        rec = s.get(Recording, rid)
        assert rec is not None
        rec.fixity_ok = True  # re-checked and intact (a store that was away)
        linking.on_recordings_changed(s, rt.settings, [rid], "fixity")
    assert [(f.kind, f.status) for f in _findings(rt, f"recording:{rid}")] == [("fixity_failed", "closed")]


def test_a_sequence_hole_is_a_finding_until_the_missing_file_docks(runtime: Runtime) -> None:
    rt = runtime

    def dock(seq: int, minutes: int) -> int:
        with transaction(rt.sessions) as s:
            rec = ad.recording(s, "CAM-S", T0 + timedelta(minutes=minutes), seconds=60, sequence=seq)
            linking.on_recordings_changed(s, rt.settings, [rec.id], "test")
            return rec.id

    dock(1, 0)
    third = dock(3, 10)  # file 2 has not docked: a hole before file 3
    [hole] = [f for f in _findings(rt, f"recording:{third}") if f.kind == "sequence_hole"]
    assert hole.status == "open" and (hole.details["from_sequence"], hole.details["to_sequence"]) == (2, 2)
    second = dock(2, 5)  # the missing file docks late: the hole is gone
    [hole] = [f for f in _findings(rt, f"recording:{third}") if f.kind == "sequence_hole"]
    assert hole.status == "closed"
    assert not [f for f in _findings(rt, f"recording:{second}") if f.kind == "sequence_hole"]
    dock(1, 20)  # the camera's counter reset: a drop, not a hole
    assert [f.kind for f in _findings(rt) if f.kind == "sequence_hole"] == ["sequence_hole"]


def test_a_pending_verdict_that_runs_out_opens_its_findings_on_refresh(runtime: Runtime) -> None:
    from audit.findings_refresh import judge_expired

    rt = runtime
    start = utcnow() - timedelta(hours=2)
    with transaction(rt.sessions) as s:
        row = ad.action(s, "P1", "U1", start, "complete", minutes=10, devices=("CAM-P", "CAM-Q"), reasons=[])
        linking.on_actions_changed(s, rt.settings, [row.id], "test")
    assert _findings(rt) == []  # pending: the cameras may not have docked yet
    later = utcnow() + timedelta(hours=rt.settings.upload_grace_hours)
    with transaction(rt.sessions) as s:
        assert judge_expired(s, rt.settings, later, "scheduler") == 1
    assert {f.kind for f in _findings(rt, "action:P1")} == {"no_footage", "shortfall"}
    with transaction(rt.sessions) as s:
        assert judge_expired(s, rt.settings, later, "scheduler") == 0
