"""Linking recordings to actions, device resolution and incremental recomputation, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from audit import linking
from audit.registry import Registry, assign_device, update_device
from audit.shapes import action_json, effective_verdict
from storage.basics import utcnow
from storage.bulk import table_of
from storage.db import transaction
from storage.models import Action, ActionDevice, ActionRecording, Device, Recording
from storage.runtime import Runtime
from tests.fixtures import coverage_data as cd
from tests.fixtures.media import MediaFactory

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


def sec(n: float) -> timedelta:
    return timedelta(seconds=n)


class Files:
    """Real media files, each with distinct bytes."""

    def __init__(self, media: MediaFactory, tmp: Path) -> None:
        self.media, self.tmp, self.n = media, tmp, 0

    def __call__(self, seconds: float = 10, **kw: object) -> Path:
        self.n += 1
        return self.media.make(self.tmp / f"f{self.n}.mp4", seconds=seconds, tone=200 + 11 * self.n, **kw)  # type: ignore[arg-type]


@pytest.fixture
def files(media: MediaFactory, tmp_path: Path) -> Files:
    return Files(media, tmp_path / "files")


def links(rt: Runtime, action_id: str) -> dict[str, bool]:
    """Original file names linked to the action, with their manual flag."""
    with transaction(rt.sessions) as s:
        rows = s.execute(
            select(Recording.original_name, ActionRecording.manual)
            .join(ActionRecording, ActionRecording.recording_id == Recording.id)
            .join(Action, Action.id == ActionRecording.action_id)
            .where(Action.action_id == action_id)
        ).all()
    return {name: manual for name, manual in rows}


def get_action(rt: Runtime, action_id: str) -> Action:
    with transaction(rt.sessions) as s:
        return s.scalars(select(Action).where(Action.action_id == action_id)).one()


def test_relink_takes_overlapping_recordings_of_the_action_devices_only(runtime: Runtime, files: Files) -> None:
    rt = runtime
    with transaction(rt.sessions) as s:
        act = cd.action(s, "X1", T0, T0 + sec(60), devices=["A", "B"])
        inside = cd.stored_recording(s, rt.store, files(), "A", T0 + sec(5))
        before = cd.stored_recording(s, rt.store, files(), "A", T0 - sec(30))  # ends 20 s before the start
        other = cd.stored_recording(s, rt.store, files(), "C", T0 + sec(5))  # device not on the action
        after = cd.stored_recording(s, rt.store, files(), "B", T0 + sec(65))
    with transaction(rt.sessions) as s:
        linking.on_actions_changed(s, rt.settings, [act.id], "tester")
    assert set(links(rt, "X1")) == {inside.original_name}
    with transaction(rt.sessions) as s:
        changes = cd.events(s, "links.changed", "action:X1")
    # every automatic link change of one action in one pass is one event listing what was added and removed
    assert changes == [{"added": [{"recording": inside.id, "sha256": inside.sha256}], "removed": [], "manual": False}]
    # a wider margin takes the footage just before and after as context
    wide = rt.settings.model_copy(update={"link_margin_seconds": 30.0})
    with transaction(rt.sessions) as s:
        linking.on_actions_changed(s, wide, [act.id], "tester")
    assert set(links(rt, "X1")) == {inside.original_name, before.original_name, after.original_name}
    assert other.original_name not in links(rt, "X1")
    # back to no margin: the context links are stale and go, each with an event
    with transaction(rt.sessions) as s:
        linking.on_actions_changed(s, rt.settings, [act.id], "tester")
        changes = cd.events(s, "links.changed", "action:X1")
    assert set(links(rt, "X1")) == {inside.original_name}
    assert len(changes) == 3
    assert changes[-1]["added"] == []
    assert sorted(e["sha256"] for e in changes[-1]["removed"]) == sorted([before.sha256, after.sha256])


def test_clock_offset_moves_a_recording_into_the_window(runtime: Runtime, files: Files) -> None:
    rt = runtime
    with transaction(rt.sessions) as s:
        act = cd.action(s, "X1", T0, T0 + sec(60), devices=["A"])
        slow = cd.stored_recording(s, rt.store, files(), "A", T0 - sec(3600 + 5))  # clock an hour slow
    with transaction(rt.sessions) as s:
        linking.on_actions_changed(s, rt.settings, [act.id], "t")
    assert links(rt, "X1") == {}
    with transaction(rt.sessions) as s:
        change = update_device(Registry(s, "admin", origin="test"), "A", clock_offset_seconds=3600.0)
        assert change.affected_actions == {act.id}
        linking.on_actions_changed(s, rt.settings, sorted(change.affected_actions), "admin")
    assert links(rt, "X1") == {slow.original_name: False}


def test_devices_resolved_from_officer_assignments(runtime: Runtime) -> None:
    rt = runtime
    with transaction(rt.sessions) as s:
        cd.assign(s, "A", "P1", T0 - timedelta(days=1), None)
        cd.assign(s, "OLD", "P1", T0 - timedelta(days=9), T0 - timedelta(days=2))  # returned before the action
        cd.assign(s, "B", "P2", T0 - timedelta(days=1), T0 + sec(10))  # handed in during the action: it was there
        act = cd.action(s, "X1", T0, T0 + sec(60), devices=["N"], officers=[("P1", True), ("P2", True)])
    with transaction(rt.sessions) as s:
        linking.on_actions_changed(s, rt.settings, [act.id], "t")
        rows = s.execute(
            select(Device.serial, ActionDevice.source)
            .join(ActionDevice, ActionDevice.device_id == Device.id)
            .where(ActionDevice.action_id == act.id)
        ).all()
    assert {str(k): str(v) for k, v in rows} == {"A": "assignment", "B": "assignment", "N": "named"}
    # the assignment of B is corrected to end before the action: B is no longer on it, N stays
    with transaction(rt.sessions) as s:
        change = assign_device(Registry(s, "admin", origin="test"), "B", "P2", T0 - timedelta(days=1), T0 - sec(1))
        assert change.affected_actions == {act.id}
        linking.on_actions_changed(s, rt.settings, sorted(change.affected_actions), "admin")
        serials = s.scalars(
            select(Device.serial).join(ActionDevice).where(ActionDevice.action_id == act.id).order_by(Device.serial)
        ).all()
    assert serials == ["A", "N"]


def test_recompute_records_a_coverage_event_only_when_something_changed(runtime: Runtime, files: Files) -> None:
    rt = runtime
    with transaction(rt.sessions) as s:
        act = cd.action(s, "X1", T0, T0 + sec(8), devices=["A", "B"])
        cd.stored_recording(s, rt.store, files(), "A", T0 - sec(1))
    later = T0 + timedelta(days=3)
    with transaction(rt.sessions) as s:
        linking.on_actions_changed(s, rt.settings, [act.id], "t", now=later)
        first = s.get(Action, act.id)
        assert first is not None and first.verdict == "incomplete"
        linking.on_actions_changed(s, rt.settings, [act.id], "t", now=later + sec(5))
        assert first.verdict == "incomplete"
        changes = cd.events(s, "coverage.changed", "action:X1")
    assert len(changes) == 1
    assert changes[0]["from"] is None and changes[0]["to"] == "incomplete"
    act = get_action(rt, "X1")
    assert act.coverage_computed_at == later + sec(5)


def test_late_docking_completes_the_action(runtime: Runtime, files: Files) -> None:
    """A's footage is in; B docks two days later and the verdict turns complete without anyone asking."""
    rt = runtime
    start = utcnow().replace(microsecond=0) - timedelta(days=2)
    with transaction(rt.sessions) as s:
        act = cd.action(s, "X1", start, start + sec(8), devices=["A", "B"])
        a = cd.stored_recording(s, rt.store, files(), "A", start - sec(1))
        linking.on_recordings_changed(s, rt.settings, [a.id], "station:1")
    with transaction(rt.sessions) as s:
        stored = s.get(Action, act.id)
        assert stored is not None
        # computed as of the action's end (the station docked A right away): pending, B may still dock
        linking.on_actions_changed(s, rt.settings, [act.id], "t", now=start + sec(60))
        assert stored.verdict == "pending"
        assert effective_verdict(stored, utcnow()) == "incomplete"  # the clock alone has moved on
    with transaction(rt.sessions) as s:
        b = cd.stored_recording(s, rt.store, files(), "B", start - sec(1), received_at=start + timedelta(days=2))
        linking.on_recordings_changed(s, rt.settings, [b.id], "station:1")
        changes = cd.events(s, "coverage.changed", "action:X1")
    act = get_action(rt, "X1")
    assert act.verdict == "complete"
    assert act.reasons == []
    assert act.pending_until is None
    assert changes[-1]["from"] == "pending" and changes[-1]["to"] == "complete"
    assert set(links(rt, "X1")) == {a.original_name, b.original_name}


def test_incremental_update_touches_only_the_affected_actions(runtime: Runtime, files: Files) -> None:
    rt = runtime
    with transaction(rt.sessions) as s:
        cd.action(s, "NEAR", T0, T0 + sec(8), devices=["A", "B"])
        cd.action(s, "LATER", T0 + timedelta(hours=2), T0 + timedelta(hours=2, seconds=8), devices=["A", "B"])
        cd.action(s, "OTHER", T0, T0 + sec(8), devices=["C", "D"])
        cd.stored_recording(s, rt.store, files(), "C", T0 - sec(1))
    computed_at = T0 + timedelta(days=5)
    assert linking.recompute_all(rt.sessions, rt.settings, computed_at, "t").actions == 3
    with transaction(rt.sessions) as s:
        rec = cd.stored_recording(s, rt.store, files(), "A", T0 - sec(1))
        linking.on_recordings_changed(s, rt.settings, [rec.id], "station")
    assert get_action(rt, "NEAR").coverage_computed_at != computed_at
    assert get_action(rt, "LATER").coverage_computed_at == computed_at
    assert get_action(rt, "OTHER").coverage_computed_at == computed_at
    assert set(links(rt, "NEAR")) == {rec.original_name}
    assert get_action(rt, "NEAR").reasons[0]["devices_recording"] == ["A"]


def test_recording_moved_out_of_an_action_is_unlinked(runtime: Runtime, files: Files) -> None:
    rt = runtime
    with transaction(rt.sessions) as s:
        cd.action(s, "X1", T0, T0 + sec(8), devices=["A"])
        rec = cd.stored_recording(s, rt.store, files(), "A", T0)
        linking.on_recordings_changed(s, rt.settings, [rec.id], "t")
    assert set(links(rt, "X1")) == {rec.original_name}
    with transaction(rt.sessions) as s:
        moved = s.get(Recording, rec.id)
        assert moved is not None
        moved.started_at, moved.ended_at = T0 + timedelta(hours=5), T0 + timedelta(hours=5, seconds=10)
        linking.on_recordings_changed(s, rt.settings, [rec.id], "t")
    assert links(rt, "X1") == {}
    assert [r["code"] for r in get_action(rt, "X1").reasons][:2] == ["too_few_devices", "no_footage"]


def test_full_and_incremental_recompute_agree(runtime: Runtime, files: Files) -> None:
    rt = runtime
    with transaction(rt.sessions) as s:
        ids = []
        for i, devices in enumerate((["A", "B"], ["A"], ["B", "C"], ["C"])):
            start = T0 + timedelta(minutes=10 * i)
            ids.append(cd.action(s, f"X{i}", start, start + sec(8), devices=devices).id)
            cd.stored_recording(s, rt.store, files(), devices[0], start - sec(1))
    with transaction(rt.sessions) as s:
        linking.on_actions_changed(s, rt.settings, ids, "t")
        incremental = {a.action_id: (a.verdict, a.reasons) for a in s.scalars(select(Action))}
        s.execute(table_of(ActionRecording).delete())
    assert linking.recompute_all(rt.sessions, rt.settings, utcnow(), "t").actions == 4
    with transaction(rt.sessions) as s:
        full = {a.action_id: (a.verdict, a.reasons) for a in s.scalars(select(Action))}
    assert full == incremental
    assert incremental["X1"][1][0]["code"] == "too_few_devices"


def test_effective_verdict_turns_pending_into_incomplete_by_the_clock() -> None:
    act = Action(verdict="pending", pending_until=T0)
    assert effective_verdict(act, T0 - sec(1)) == "pending"
    assert effective_verdict(act, T0) == "incomplete"
    assert effective_verdict(Action(verdict="complete"), T0) == "complete"


def test_action_json_shape(runtime: Runtime, files: Files) -> None:
    rt = runtime
    with transaction(rt.sessions) as s:
        act = cd.action(s, "X1", T0, T0 + sec(8), devices=["B", "A"], officers=[("P1", True)], unit="U1")
        rec = cd.stored_recording(s, rt.store, files(), "A", T0 - sec(1))
        linking.on_actions_changed(s, rt.settings, [act.id], "t")
        data = action_json(s, act, utcnow())
    assert data["action_id"] == "X1" and data["unit"] == "U1" and data["case_number"] == "C-X1"
    assert data["started_at"] == "2024-05-01T08:00:00+00:00"
    assert data["ended_at"] == "2024-05-01T08:00:08+00:00"
    assert data["devices"] == ["A", "B"] and data["officers"] == ["P1"]
    assert data["recordings"] == [rec.id]
    assert data["verdict"] == "incomplete"
    assert data["reasons"][0]["code"] == "shortfall" and data["reasons"][0]["devices_recording"] == ["A"]
    json.dumps(data)  # plain JSON values only


def test_batched_link_events_are_the_same_leaves_as_single_ones(runtime: Runtime, files: Files) -> None:
    from storage.events import leaf_bytes, leaf_hash
    from storage.models import AuditEvent

    rt = runtime
    with transaction(rt.sessions) as s:
        act = cd.action(s, "X1", T0, T0 + sec(8), devices=["A", "B"])
        for i, serial in enumerate(("A", "B", "A")):
            cd.stored_recording(s, rt.store, files(3), serial, T0 + sec(2 * i))
        linking.on_actions_changed(s, rt.settings, [act.id], "t")
    with transaction(rt.sessions) as s:
        rows = s.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [e.seq for e in rows] == list(range(1, len(rows) + 1))
    assert [e.kind for e in rows] == ["links.changed", "coverage.changed"]
    assert len(json.loads(rows[0].details)["added"]) == 3
    for e in rows:
        assert e.leaf_hash == leaf_hash(leaf_bytes(e.seq, e.at, e.actor, e.kind, e.subject, e.details))


def test_actions_loaded_in_the_session_see_the_new_verdict(runtime: Runtime, files: Files) -> None:
    """An importer that changes an action and recomputes in one transaction reads the result off its object."""
    rt = runtime
    with transaction(rt.sessions) as s:
        act = cd.action(s, "X1", T0, T0 + sec(8), devices=["A"])
        cd.stored_recording(s, rt.store, files(), "A", T0 - sec(1))
        linking.on_actions_changed(s, rt.settings, [act.id], "t")
        assert act.verdict == "incomplete"
        assert act.reasons[0]["code"] == "too_few_devices"
        assert act.coverage_computed_at is not None
    assert get_action(rt, "X1").reasons == act.reasons
