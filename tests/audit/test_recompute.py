"""Full recomputes and coverage-policy changes on both databases (their commands: tests/api/cli/test_coverage.py)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from audit import linking
from audit.linking import full
from audit.policy import apply_policy, recorded_policy
from storage.basics import utcnow
from storage.db import transaction
from storage.events import append_event
from storage.models import Action, ActionRecording, AuditEvent
from storage.runtime import Runtime
from tests.fixtures import audit_data as ad
from tests.fixtures.audit_data import event_kinds, one_device_action, verdicts

T0 = ad.utc(2024, 5, 1, 8, 0)


def test_no_policy_event_before_the_first_action(runtime: Runtime) -> None:
    assert apply_policy(runtime.sessions, runtime.settings, utcnow(), "t").changed is False
    with transaction(runtime.sessions) as s:
        assert recorded_policy(s) is None
    one_device_action(runtime)
    assert apply_policy(runtime.sessions, runtime.settings, utcnow(), "t").changed is True
    assert apply_policy(runtime.sessions, runtime.settings, utcnow(), "t").recomputed is None
    assert event_kinds(runtime).count("policy.changed") == 1


def test_full_recompute_relinks_under_a_new_margin_and_is_idempotent(runtime: Runtime) -> None:
    rt = runtime
    with transaction(rt.sessions) as s:
        ad.action(s, "X", "U1", T0, "complete", minutes=10, devices=("A", "B"))
        inside = [ad.recording(s, d, T0, seconds=600) for d in ("A", "B")]
        context = ad.recording(s, "A", T0 - timedelta(seconds=100), seconds=60)  # ends 40 s before the start
    assert linking.recompute_all(rt.sessions, rt.settings, utcnow(), "t").actions == 1
    with rt.sessions() as s:
        first = [json.loads(d) for d in s.scalars(select(AuditEvent.details).where(AuditEvent.kind == "links.changed"))]
    assert [sorted(r["recording"] for r in e["added"]) for e in first] == [sorted(r.id for r in inside)]
    kinds = event_kinds(rt)

    # nothing changed: no event, no write but the computation time
    assert linking.recompute_all(rt.sessions, rt.settings, utcnow(), "t").verdicts_changed == 0
    assert event_kinds(rt) == kinds

    wide = rt.settings.model_copy(update={"link_margin_seconds": 60.0})
    linking.recompute_all(rt.sessions, wide, utcnow(), "t")
    linking.recompute_all(rt.sessions, rt.settings, utcnow(), "t")
    with rt.sessions() as s:
        changes = [
            json.loads(d) for d in s.scalars(select(AuditEvent.details).where(AuditEvent.kind == "links.changed"))
        ]
        linked = set(s.scalars(select(ActionRecording.recording_id)))
    assert changes[-2]["added"] == [{"recording": context.id, "sha256": context.sha256}]
    assert changes[-1] == {
        "added": [],
        "removed": [{"recording": context.id, "sha256": context.sha256}],
        "manual": False,
    }
    assert linked == {r.id for r in inside}


WAIT = 30.0  # an upper bound for an Event that is set at once when the code is right


def test_writers_commit_while_a_full_recompute_is_between_batches(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch commits and lets go of the event-log lock; a recording stored meanwhile stays linked."""
    rt = runtime
    monkeypatch.setattr(full, "BATCH", 1)
    one_device_action(rt)  # SOLO, DUO
    with transaction(rt.sessions) as s:
        ad.action(s, "LATE", "U1", T0 + timedelta(hours=2), "complete", minutes=10, devices=("D", "E"))
    between, written = threading.Event(), threading.Event()
    arrived: list[int] = []

    def ingest_meanwhile() -> None:
        assert between.wait(WAIT)
        with transaction(rt.sessions) as s:
            append_event(s, "test.meanwhile", "test", {}, "other")  # takes the event-log lock
            rec = ad.recording(s, "D", T0 + timedelta(hours=2), seconds=600)
            linking.on_recordings_changed(s, rt.settings, [rec.id], "station")
            arrived.append(rec.id)
        written.set()

    def after_batch(_n: int) -> None:
        if not between.is_set():  # after the first batch: a writer must get through before the second
            between.set()
            assert written.wait(WAIT), "the writer waited for the recompute"

    writer = threading.Thread(target=ingest_meanwhile)
    writer.start()
    try:
        done = linking.recompute_all(rt.sessions, rt.settings, utcnow(), "t", after_batch)
    finally:
        between.set()
        writer.join(WAIT)
    assert done.actions == 3
    kinds = event_kinds(rt)
    meanwhile = kinds.index("test.meanwhile")
    assert "coverage.changed" in kinds[:meanwhile] and "coverage.changed" in kinds[meanwhile + 1 :]
    with rt.sessions() as s:  # the later batch read the new recording and kept its link
        late = s.scalars(select(Action).where(Action.action_id == "LATE")).one()
        assert set(s.scalars(select(ActionRecording.recording_id).where(ActionRecording.action_id == late.id))) == set(
            arrived
        )


class Interrupted(Exception):
    """Stands in for a crash or Ctrl-C between two batches."""


def test_an_interrupted_policy_recompute_is_finished_by_the_next_run(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = runtime
    monkeypatch.setattr(full, "BATCH", 1)
    one_device_action(rt)  # both stored as "complete"; under the policy both lack a second device

    def crash(_n: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        apply_policy(rt.sessions, rt.settings, utcnow(), "t", crash)
    assert verdicts(rt) == {"SOLO": "incomplete", "DUO": "complete"}  # the first batch committed, whole
    assert "policy.changed" in event_kinds(rt) and "policy.applied" not in event_kinds(rt)

    run = apply_policy(rt.sessions, rt.settings, utcnow(), "t")
    assert (run.changed, run.resumed) == (False, True)
    assert run.recomputed is not None and run.recomputed.actions == 2
    assert verdicts(rt) == {"SOLO": "incomplete", "DUO": "incomplete"}
    assert event_kinds(rt)[-1] == "policy.applied"
    assert apply_policy(rt.sessions, rt.settings, utcnow(), "t").recomputed is None  # done: nothing more to do
