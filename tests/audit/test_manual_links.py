"""Links by hand (SPEC §6): audited, idempotent, and kept through every recompute, on both databases."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from audit import linking
from config.errors import Conflict, NotFound
from storage.basics import utcnow
from storage.db import reading, transaction
from storage.models import Action, ActionRecording, AuditEvent, ManualUnlink, Recording
from storage.runtime import Runtime
from tests.fixtures import audit_data as ad
from tests.fixtures import coverage_data as cd
from tests.fixtures.media import MediaFactory

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
REVIEWER = "token:reviewer-li"


def linked(rt: Runtime, action_id: str) -> dict[int, bool]:
    """Recording ids linked to the action, with their manual flag."""
    with reading(rt.sessions) as s:
        rows = s.execute(
            select(ActionRecording.recording_id, ActionRecording.manual)
            .join(Action, Action.id == ActionRecording.action_id)
            .where(Action.action_id == action_id)
        ).all()
    return {rid: manual for rid, manual in rows}


def verdict(rt: Runtime, action_id: str) -> str | None:
    with reading(rt.sessions) as s:
        return s.scalar(select(Action.verdict).where(Action.action_id == action_id))


def manual_events(rt: Runtime, kind: str) -> list[tuple[str, dict[str, object]]]:
    with reading(rt.sessions) as s:
        rows = s.execute(select(AuditEvent.actor, AuditEvent.details).where(AuditEvent.kind == kind)).all()
    return [(actor, json.loads(details)) for actor, details in rows]


def event_count(rt: Runtime) -> int:
    with reading(rt.sessions) as s:
        return int(s.scalar(select(func.count(AuditEvent.seq))) or 0)


@pytest.fixture
def scene(runtime: Runtime, media: MediaFactory, tmp_path: Path) -> tuple[Recording, Recording]:
    """X1 needs devices A and B; A filmed it all, B nothing; Z (a borrowed camera, not on record) filmed it too."""
    with transaction(runtime.sessions) as s:
        act = cd.action(s, "X1", T0, T0 + timedelta(seconds=8), devices=["A", "B"])
        own = cd.stored_recording(s, runtime.store, media.make(tmp_path / "a.mp4", seconds=10, tone=300), "A", T0)
        lent = cd.stored_recording(s, runtime.store, media.make(tmp_path / "z.mp4", seconds=10, tone=500), "Z", T0)
        linking.on_actions_changed(s, runtime.settings, [act.id], "t", now=T0 + timedelta(days=3))
    assert linked(runtime, "X1") == {own.id: False}
    assert verdict(runtime, "X1") == "incomplete"
    return own, lent


def test_a_manual_link_counts_is_audited_once_and_survives_recomputes(
    runtime: Runtime, scene: tuple[Recording, Recording]
) -> None:
    rt, (own, lent) = runtime, scene
    with transaction(rt.sessions) as s:
        change = linking.link_by_hand(s, rt.settings, rt.store, "X1", lent.id, REVIEWER)
        assert change.changed and change.action.verdict == "complete"  # the object in the session is re-judged
    assert linked(rt, "X1") == {own.id: False, lent.id: True}
    assert verdict(rt, "X1") == "complete"
    assert manual_events(rt, "link.added") == [
        (REVIEWER, {"recording": lent.id, "sha256": lent.sha256, "manual": True, "was_linked": False})
    ]
    before = event_count(rt)
    with transaction(rt.sessions) as s:  # linking twice changes nothing and records nothing
        assert linking.link_by_hand(s, rt.settings, rt.store, "X1", lent.id, REVIEWER).changed is False
    assert event_count(rt) == before

    assert linking.recompute_all(rt.sessions, rt.settings, utcnow(), "t").actions == 1
    assert linked(rt, "X1") == {own.id: False, lent.id: True}
    assert verdict(rt, "X1") == "complete"


def test_a_manual_unlink_survives_recomputes_and_new_footage_until_linked_again(
    runtime: Runtime, scene: tuple[Recording, Recording]
) -> None:
    rt, (own, lent) = runtime, scene
    with transaction(rt.sessions) as s:
        linking.link_by_hand(s, rt.settings, rt.store, "X1", lent.id, REVIEWER)
        change = linking.unlink_by_hand(s, rt.settings, "X1", own.id, REVIEWER)  # an automatic link
        assert change.changed
    assert linked(rt, "X1") == {lent.id: True}
    assert verdict(rt, "X1") == "incomplete"  # only Z films now: one device of two
    assert manual_events(rt, "link.removed") == [
        (REVIEWER, {"recording": own.id, "sha256": own.sha256, "manual": True, "was_manual": False})
    ]
    before = event_count(rt)
    with transaction(rt.sessions) as s:  # unlinking twice: nothing changes, no event
        assert linking.unlink_by_hand(s, rt.settings, "X1", own.id, REVIEWER).changed is False
    assert event_count(rt) == before

    linking.recompute_all(rt.sessions, rt.settings, utcnow(), "t")
    wide = rt.settings.model_copy(update={"link_margin_seconds": 600.0})
    linking.recompute_all(rt.sessions, wide, utcnow(), "t")
    with transaction(rt.sessions) as s:  # the recording changes and ingest re-judges: still not linked back
        linking.on_recordings_changed(s, rt.settings, [own.id], "station")
    assert linked(rt, "X1") == {lent.id: True}
    assert verdict(rt, "X1") == "incomplete"

    with transaction(rt.sessions) as s:  # linking by hand lifts the unlink
        assert linking.link_by_hand(s, rt.settings, rt.store, "X1", own.id, REVIEWER).changed
        assert s.scalar(select(func.count()).select_from(ManualUnlink)) == 0
    assert linked(rt, "X1") == {own.id: True, lent.id: True}
    assert verdict(rt, "X1") == "complete"


def test_unlinking_a_manual_link_removes_it_for_good(runtime: Runtime, scene: tuple[Recording, Recording]) -> None:
    rt, (own, lent) = runtime, scene
    with transaction(rt.sessions) as s:
        linking.link_by_hand(s, rt.settings, rt.store, "X1", lent.id, REVIEWER)
        linking.unlink_by_hand(s, rt.settings, "X1", lent.id, REVIEWER)
    linking.recompute_all(rt.sessions, rt.settings, utcnow(), "t")
    assert linked(rt, "X1") == {own.id: False}
    assert [d["was_manual"] for _a, d in manual_events(rt, "link.removed")] == [True]


def test_bad_requests_say_what_is_wrong_and_write_nothing(runtime: Runtime, scene: tuple[Recording, Recording]) -> None:
    rt, (own, lent) = runtime, scene
    with transaction(rt.sessions) as s:
        ghost = ad.recording(s, "A", T0)  # a row whose object was never stored
    before = event_count(rt)
    cases: list[tuple[str, int, type[Exception], str]] = [
        ("NOPE", lent.id, NotFound, "action_not_found"),
        ("X1", 999_999, NotFound, "recording_not_found"),
        ("X1", ghost.id, Conflict, "recording_unreachable"),
    ]
    for action_id, recording_id, error, code in cases:
        with pytest.raises(error) as caught, transaction(rt.sessions) as s:
            linking.link_by_hand(s, rt.settings, rt.store, action_id, recording_id, REVIEWER)
        assert caught.value.code == code  # type: ignore[attr-defined]
    with pytest.raises(NotFound) as not_linked, transaction(rt.sessions) as s:
        linking.unlink_by_hand(s, rt.settings, "X1", lent.id, REVIEWER)
    assert not_linked.value.code == "not_linked"
    assert event_count(rt) == before
    assert linked(rt, "X1") == {own.id: False}
