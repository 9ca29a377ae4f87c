"""``bwc run``'s housekeeping on both databases: a pending verdict whose grace runs out opens its findings with
nobody docking, and expired web sessions and finished viewings are deleted without saving a read its audit.

Time is the clock handed to the loop, and the wait between turns is a function that stops the loop: no sleeping.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select, update

from api.auth import create_token
from api.housekeeping import housekeep_forever, housekeep_once
from api.web_sessions import VIEWING_IDLE, Purged, end_session, purge_expired, start_session, viewing_to_audit
from audit import linking
from storage.basics import utcnow
from storage.db import transaction
from storage.models import ApiToken, Finding, WebSession, WebViewing
from storage.runtime import Runtime
from tests.fixtures import audit_data as ad


def _turns(n: int, stop: threading.Event, seen: list[float]) -> Callable[[float], bool]:
    """The loop's wait: records each interval asked for and reports the stop after ``n`` turns."""

    def wait(seconds: float) -> bool:
        seen.append(seconds)
        if len(seen) >= n:
            stop.set()
        return stop.is_set()

    return wait


def _findings(rt: Runtime, subject: str) -> set[tuple[str, str]]:
    with rt.sessions() as s:
        return {(f.kind, f.status) for f in s.scalars(select(Finding).where(Finding.subject == subject))}


def _pending_action(rt: Runtime, action_id: str) -> datetime:
    """An action filmed two hours ago whose cameras have not docked: pending until the grace runs out."""
    with transaction(rt.sessions) as s:
        row = ad.action(
            s, action_id, "一大队", utcnow() - timedelta(hours=2), "complete", minutes=10, devices=("C1", "C2")
        )
        linking.on_actions_changed(s, rt.settings, [row.id], "test")
        s.refresh(row)
        assert row.verdict == "pending" and row.pending_until is not None
        return row.pending_until


def test_the_service_loop_opens_findings_once_the_grace_has_passed(runtime: Runtime) -> None:
    rt = runtime
    until = _pending_action(rt, "H1")
    settings = rt.settings.model_copy(update={"housekeeping_seconds": 90.0})
    times = iter([until - timedelta(minutes=1), until + timedelta(seconds=1), until + timedelta(minutes=5)])
    opened_after: list[set[tuple[str, str]]] = []
    stop = threading.Event()
    intervals: list[float] = []
    wait = _turns(3, stop, intervals)

    def waiting(seconds: float) -> bool:  # what the findings were after each turn
        opened_after.append(_findings(rt, "action:H1"))
        return wait(seconds)

    housekeep_forever(rt.sessions, settings, stop, waiting, clock=lambda: next(times))

    assert intervals == [90.0, 90.0, 90.0]
    assert opened_after[0] == set(), "still within the grace: the cameras may yet dock"
    assert opened_after[1] == {("no_footage", "open"), ("shortfall", "open")}
    assert opened_after[2] == opened_after[1], "a later turn opens nothing twice"
    with rt.sessions() as s:
        [finding] = s.scalars(select(Finding).where(Finding.subject == "action:H1", Finding.kind == "shortfall"))
        assert [line["actor"] for line in finding.history] == ["housekeeping"]


def _signed_in(rt: Runtime, name: str, hours: float) -> int:
    with transaction(rt.sessions) as s:
        create_token(s, role="reviewer", name=name, actor="test")
        token_id = s.scalar(select(ApiToken.id).where(ApiToken.name == name))
        assert token_id is not None
        _key, row = start_session(s, token_id, hours)
        return row.id


def _count(rt: Runtime, model: type[WebSession] | type[WebViewing]) -> int:
    with rt.sessions() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_purging_deletes_dead_sessions_and_finished_viewings_only(runtime: Runtime) -> None:
    rt = runtime
    with transaction(rt.sessions) as s:
        recordings = [ad.recording(s, "PV", utcnow() - timedelta(hours=3, minutes=m), seconds=60).id for m in (0, 5)]
    live = _signed_in(rt, "live", hours=12)
    expired = _signed_in(rt, "expired", hours=1)
    signed_out = _signed_in(rt, "signed-out", hours=12)
    with transaction(rt.sessions) as s:
        end_session(s, signed_out)
        for sid in (live, expired, signed_out):
            assert viewing_to_audit(s, sid, recordings[0]) is not None  # a viewing, its first read audited
    now = utcnow() + timedelta(hours=2)  # the one-hour session is over; every viewing has been idle since
    with transaction(rt.sessions) as s:
        assert viewing_to_audit(s, live, recordings[1]) is not None  # ... but this one is being watched now
        s.execute(
            update(WebViewing)
            .where(WebViewing.recording_id == recordings[1])
            .values(opened_at=now, read_at=now, last_read_at=now)
        )

    with transaction(rt.sessions) as s:
        purged = purge_expired(s, now)

    assert (purged.sessions, purged.viewings) == (2, 3)
    with rt.sessions() as s:
        assert list(s.scalars(select(WebSession.id))) == [live]
        assert list(s.scalars(select(WebViewing.recording_id))) == [recordings[1]]
    with transaction(rt.sessions) as s:
        assert purge_expired(s, now) == Purged(0, 0)
        # the live session plays the purged recording again: a new viewing, and its read is audited
        assert viewing_to_audit(s, live, recordings[0]) is not None


def test_a_viewing_still_watched_keeps_its_older_siblings(runtime: Runtime) -> None:
    rt = runtime
    with transaction(rt.sessions) as s:
        rid = ad.recording(s, "PW", utcnow() - timedelta(hours=3), seconds=60).id
    sid = _signed_in(rt, "watcher", hours=12)
    now = utcnow()
    with transaction(rt.sessions) as s:  # an old viewing of this recording and a current one
        s.add(WebViewing(session_id=sid, recording_id=rid, opened_at=now - 3 * VIEWING_IDLE))
        s.add(WebViewing(session_id=sid, recording_id=rid, opened_at=now, read_at=now, last_read_at=now))
    with transaction(rt.sessions) as s:
        assert purge_expired(s, now) == Purged(0, 0)
    assert _count(rt, WebViewing) == 2


def test_a_turn_does_both_and_counts_what_it_did(runtime: Runtime) -> None:
    rt = runtime
    until = _pending_action(rt, "H2")
    _signed_in(rt, "old", hours=1)
    turn = housekeep_once(rt.sessions, rt.settings, until + timedelta(hours=1))
    assert (turn.rejudged, turn.sessions_purged, turn.viewings_purged) == (1, 1, 0)
    assert _count(rt, WebSession) == 0
    assert ("shortfall", "open") in _findings(rt, "action:H2")
