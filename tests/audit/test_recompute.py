"""Full recomputes and coverage-policy changes, on both databases (the commands: tests/api/cli/test_coverage.py)."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select

from audit import linking
from audit.policy import ensure_policy_current, recorded_policy
from storage.db import transaction
from storage.models import ActionRecording, AuditEvent
from storage.runtime import Runtime
from storage.types import utcnow
from tests.fixtures import audit_data as ad
from tests.fixtures.audit_data import event_kinds, one_device_action

T0 = ad.POLICY_T0


def test_no_policy_event_before_the_first_action(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as s:
        assert ensure_policy_current(s, runtime.settings, utcnow(), "t") is False
        assert recorded_policy(s) is None
    one_device_action(runtime)
    with transaction(runtime.sessions) as s:
        assert ensure_policy_current(s, runtime.settings, utcnow(), "t") is True
    with transaction(runtime.sessions) as s:
        assert ensure_policy_current(s, runtime.settings, utcnow(), "t") is False
    assert event_kinds(runtime).count("policy.changed") == 1


def test_full_recompute_relinks_under_a_new_margin_and_is_idempotent(runtime: Runtime) -> None:
    rt = runtime
    with transaction(rt.sessions) as s:
        ad.action(s, "X", "U1", T0, "complete", minutes=10, devices=("A", "B"))
        inside = [ad.recording(s, d, T0, seconds=600) for d in ("A", "B")]
        context = ad.recording(s, "A", T0 - timedelta(seconds=100), seconds=60)  # ends 40 s before the start
    with transaction(rt.sessions) as s:
        assert linking.recompute_everything(s, rt.settings, utcnow(), "t").actions == 1
    with rt.sessions() as s:
        first = [json.loads(d) for d in s.scalars(select(AuditEvent.details).where(AuditEvent.kind == "links.changed"))]
    assert [sorted(r["recording"] for r in e["added"]) for e in first] == [sorted(r.id for r in inside)]
    kinds = event_kinds(rt)

    with transaction(rt.sessions) as s:  # nothing changed: no event, no write but the computation time
        assert linking.recompute_everything(s, rt.settings, utcnow(), "t").verdicts_changed == 0
    assert event_kinds(rt) == kinds

    wide = rt.settings.model_copy(update={"link_margin_seconds": 60.0})
    with transaction(rt.sessions) as s:
        linking.recompute_all(s, wide, utcnow(), "t")
    with transaction(rt.sessions) as s:
        linking.recompute_all(s, rt.settings, utcnow(), "t")
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
