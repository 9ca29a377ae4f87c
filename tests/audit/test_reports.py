"""The missing-recording report: period in the local zone, per-unit totals, late uploads, holes, unclaimed."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from audit.reports import missing_report
from audit.shapes import action_json
from config.errors import BadInput
from config.settings import Settings
from storage.db import transaction
from storage.models import Action, ActionRecording
from storage.runtime import Runtime
from tests.fixtures.audit_data import action, device, recording, unit, utc

NOW = utc(2024, 6, 1, 0, 0)


@pytest.fixture
def shanghai(settings: Settings) -> Settings:
    return settings.model_copy(update={"timezone": "Asia/Shanghai"})


def _report(runtime: Runtime, settings: Settings, **kw: Any) -> dict[str, Any]:
    with transaction(runtime.sessions) as s:
        args: dict[str, Any] = {"date_from": None, "date_to": None, "unit": None, "now": NOW} | kw
        return missing_report(s, settings, **args)


def test_period_is_a_pair_of_local_dates(runtime: Runtime, shanghai: Settings) -> None:
    with transaction(runtime.sessions) as s:
        action(s, "late-evening", "U1", utc(2024, 5, 1, 15, 30), "incomplete")  # 2024-05-01 23:30 +08:00
        action(s, "just-after-midnight", "U1", utc(2024, 4, 30, 16, 10), "incomplete")  # 05-01 00:10 +08:00
        action(s, "april", "U1", utc(2024, 4, 30, 15, 50), "incomplete")  # 04-30 23:50 +08:00
        action(s, "may-2", "U1", utc(2024, 5, 1, 16, 0), "incomplete")  # 05-02 00:00 +08:00
    may1 = _report(runtime, shanghai, date_from=date(2024, 5, 1), date_to=date(2024, 5, 1))
    assert [a["action_id"] for a in may1["actions"]] == ["just-after-midnight", "late-evening"]
    assert (may1["from"], may1["to"], may1["timezone"]) == ("2024-05-01", "2024-05-01", "Asia/Shanghai")
    apr30 = _report(runtime, shanghai, date_from=date(2024, 4, 30), date_to=date(2024, 4, 30))
    assert [a["action_id"] for a in apr30["actions"]] == ["april"]
    open_start = _report(runtime, shanghai, date_to=date(2024, 4, 30))
    assert [a["action_id"] for a in open_start["actions"]] == ["april"]
    open_end = _report(runtime, shanghai, date_from=date(2024, 5, 2))
    assert [a["action_id"] for a in open_end["actions"]] == ["may-2"]
    with pytest.raises(BadInput):
        _report(runtime, shanghai, date_from=date(2024, 5, 2), date_to=date(2024, 5, 1))


def test_unit_totals_and_effective_verdicts(runtime: Runtime, settings: Settings) -> None:
    t = utc(2024, 5, 1, 8)
    with transaction(runtime.sessions) as s:
        action(s, "c1", "城管一中队", t, "complete")
        action(s, "c2", "城管一中队", t, "complete")
        action(s, "c3", "城管一中队", t, "complete")
        action(s, "p-expired", "城管一中队", t, "pending", pending_until=NOW - timedelta(hours=1))
        action(s, "p-open", "U2", t, "pending", pending_until=NOW + timedelta(hours=1))
        action(s, "i1", "U2", t, "incomplete", devices=("D2", "D1"), officers=("P1",))
    report = _report(runtime, settings, date_from=date(2024, 5, 1), date_to=date(2024, 5, 31))
    verdicts = {a["action_id"]: a["verdict"] for a in report["actions"]}
    assert verdicts == {"p-expired": "incomplete", "p-open": "pending", "i1": "incomplete"}
    units = {u["unit"]: u for u in report["units"]}
    assert units["城管一中队"] == {
        "unit": "城管一中队",
        "actions": 4,
        "complete": 3,
        "pending": 0,
        "incomplete": 1,
        "unjudged": 0,
        "rate": 0.75,
    }
    assert (units["U2"]["actions"], units["U2"]["pending"], units["U2"]["incomplete"], units["U2"]["rate"]) == (
        2,
        1,
        1,
        0.0,
    )
    assert (report["total"]["actions"], report["total"]["complete"], report["total"]["rate"]) == (6, 3, 0.5)
    only_u2 = _report(runtime, settings, unit="U2")
    assert sorted(a["action_id"] for a in only_u2["actions"]) == ["i1", "p-open"]
    assert [u["unit"] for u in only_u2["units"]] == ["U2"]
    with pytest.raises(BadInput, match="unknown unit"):
        _report(runtime, settings, unit="nobody")


def test_report_actions_have_the_same_shape_as_action_json(runtime: Runtime, settings: Settings) -> None:
    with transaction(runtime.sessions) as s:
        a = action(s, "i1", "U1", utc(2024, 5, 1, 8), "incomplete", devices=("D2", "D1"), officers=("P2", "P1"))
        rec = recording(s, "D1", utc(2024, 5, 1, 8))
        s.add(ActionRecording(action_id=a.id, recording_id=rec.id, manual=True))
    report = _report(runtime, settings)
    with transaction(runtime.sessions) as s:
        stored = s.scalar(select(Action).where(Action.action_id == "i1"))
        assert stored is not None
        assert report["actions"] == [action_json(s, stored, NOW)]
    assert report["actions"][0]["devices"] == ["D1", "D2"]
    assert report["actions"][0]["recordings"] == [rec.id]


def test_late_uploads_holes_and_unclaimed_recordings(runtime: Runtime, shanghai: Settings) -> None:
    day = utc(2024, 5, 1, 1)  # 09:00 in Shanghai
    with transaction(runtime.sessions) as s:
        a = action(s, "a1", "U1", day, "complete", devices=("D1",))
        on_time = recording(s, "D1", day, sequence=1)
        late = recording(
            s, "D1", day + timedelta(minutes=10), sequence=2, received_at=day + timedelta(hours=30, minutes=20)
        )
        after_hole = recording(s, "D1", day + timedelta(minutes=20), sequence=5)
        recording(s, "D1", day + timedelta(minutes=30), sequence=6)
        recording(s, "D1", day + timedelta(minutes=40), sequence=1)  # the camera's counter restarted: no hole
        recording(s, "D2", day, sequence=7)
        recording(s, "D2", day + timedelta(minutes=10), sequence=9)
        nameless = recording(s, None, day)
        recording(s, "D1", utc(2024, 5, 2, 1), sequence=9)  # outside the period
        for rec in (on_time, late, after_hole):
            s.add(ActionRecording(action_id=a.id, recording_id=rec.id))
    report = _report(runtime, shanghai, date_from=date(2024, 5, 1), date_to=date(2024, 5, 1))
    assert report["actions"] == []  # a complete action is not missing anything
    assert [(r["id"], r["hours_after_end"], r["hours_late"]) for r in report["late_uploads"]] == [(late.id, 30.0, 6.0)]
    holes = [(h["device"], h["from_sequence"], h["to_sequence"], h["count"]) for h in report["missing_files"]]
    assert holes == [("D1", 3, 4, 2), ("D2", 8, 8, 1)]
    d1_hole = report["missing_files"][0]
    assert (d1_hole["after_recording"], d1_hole["before_recording"]) == (late.id, after_hole.id)
    unclaimed = {r["id"]: r["device"] for r in report["unclaimed"]}
    assert nameless.id in unclaimed and unclaimed[nameless.id] is None
    assert not {on_time.id, late.id, after_hole.id} & set(unclaimed)
    assert len(unclaimed) == 5  # D1 seq 6 and 1, D2 seq 7 and 9, the nameless one


def test_unit_filter_applies_to_recordings_by_deviceunit(runtime: Runtime, settings: Settings) -> None:
    with transaction(runtime.sessions) as s:
        u1 = unit(s, "U1")
        unit(s, "U2")
        device(s, "D1", unit_id=u1.id)
        recording(s, "D1", utc(2024, 5, 1, 1))
        recording(s, "D9", utc(2024, 5, 1, 1))
    assert [r["device"] for r in _report(runtime, settings, unit="U1")["unclaimed"]] == ["D1"]
    assert _report(runtime, settings, unit="U2")["unclaimed"] == []
    assert sorted(r["device"] for r in _report(runtime, settings)["unclaimed"]) == ["D1", "D9"]
