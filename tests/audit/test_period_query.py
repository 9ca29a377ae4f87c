"""The period report from a real database (SQLite and PostgreSQL): figures, trend, attribution, breakdowns."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from audit.period_query import findings_counts, period_report, report_json
from audit.period_report import Attribution, FindingsCounts, PeriodReport, UnitSection
from config.errors import BadInput
from config.settings import Settings
from storage.db import reading, transaction
from storage.runtime import Runtime
from tests.fixtures.audit_data import device, recording, unit, utc
from tests.fixtures.period_data import FORMULA, MAY, NOW, U1, build_scene


def _report(rt: Runtime, unit: str | None = None, findings: object = None) -> PeriodReport:
    with reading(rt.sessions) as s:
        return period_report(s, rt.settings, *MAY, unit, NOW, findings)  # type: ignore[arg-type]


def _unit(report: PeriodReport, code: str | None) -> UnitSection:
    return next(s for s in report.units if s.unit == code)


def test_units_trend_reasons_and_late_uploads(runtime: Runtime) -> None:
    build_scene(runtime)
    report = _report(runtime)
    assert (report.previous.start, report.previous.end) == (date(2024, 3, 31), date(2024, 4, 30))
    assert [s.unit for s in report.units] == ["U2", U1, None]  # by code; actions without a unit last
    u1 = _unit(report, U1)
    assert (u1.current.actions, u1.current.complete, u1.current.incomplete) == (3, 1, 2)  # A3's grace is over
    assert (u1.current.rate, u1.previous.rate, u1.change) == (0.3333, 1.0, -0.6667)
    assert u1.reasons == (("shortfall", 2), ("no_audio", 1))
    assert (u1.uploads.recordings, u1.uploads.late) == (3, 2)  # D1's two, and D8's claimed by A2
    u2 = _unit(report, "U2")
    assert (u2.current.rate, u2.previous.rate, u2.change) == (1.0, 0.0, 1.0)
    assert (u2.uploads.recordings, u2.uploads.late) == (2, 1)  # D3's, and D9's through its carrier O3
    nobody = _unit(report, None)
    assert (nobody.current.actions, nobody.uploads.late) == (0, 1)  # D7: nobody to attribute it to
    total = report.total
    assert (total.current.actions, total.current.rate, total.previous.actions) == (4, 0.5, 3)
    assert (total.uploads.recordings, total.uploads.late, total.uploads.late_rate) == (6, 4, 0.6667)
    assert report.attribution == Attribution(late_without_unit=3, via_action=1, via_assignment=1, unattributed=1)
    assert [a.action_id for a in report.actions] == ["A4", "A1", "A2", "A3"]  # March's M1 is in neither period
    assert report.findings_available is False and total.findings is None


def test_devices_and_the_officers_who_carried_them(runtime: Runtime) -> None:
    build_scene(runtime)
    report = _report(runtime)
    devices = {b.key: (b.current.actions, b.uploads.recordings, b.uploads.late) for b in report.devices}
    assert devices == {
        "D1": (2, 2, 1),
        "D2": (1, 0, 0),
        "D3": (1, 1, 0),
        "D7": (0, 1, 1),
        "D8": (0, 1, 1),
        "D9": (0, 1, 1),
    }
    officers = {b.key: (b.current.actions, b.current.complete) for b in report.officers}
    assert officers == {"O1": (2, 1), "O3": (1, 1), None: (1, 0)}  # A3 had no camera assigned to anybody


def test_unit_filter_keeps_late_uploads_attributed_to_the_unit(runtime: Runtime) -> None:
    build_scene(runtime)
    report = _report(runtime, unit=U1)
    assert [s.unit for s in report.units] == [U1]
    assert (report.total.uploads.recordings, report.total.uploads.late) == (3, 2)
    assert report.attribution == Attribution(late_without_unit=1, via_action=1, via_assignment=0, unattributed=0)
    u2 = _report(runtime, unit="U2")
    assert (u2.total.uploads.late, u2.attribution.via_assignment) == (1, 1)
    assert [a.action_id for a in u2.actions] == ["A4"] and u2.actions[0].location == FORMULA


def test_findings_from_a_callable_or_a_value(runtime: Runtime) -> None:
    build_scene(runtime)
    seen: list[object] = []

    def summary(session: object, start: object, end: object, unit: str | None) -> list[dict[str, object]]:
        seen.append((start, end, unit))
        return [{"unit": U1, "opened": 4, "closed_in_time": 2, "closed_late": 1, "overdue": 1}]

    report = _report(runtime, findings=summary)
    assert seen and seen[0] == (NOW.replace(month=5), NOW, None)  # the period's UTC bounds
    assert _unit(report, U1).findings == FindingsCounts(4, 2, 1, 1)
    assert _unit(report, "U2").findings == FindingsCounts()  # no row: none opened, not "no data"
    assert report.total.findings == FindingsCounts(4, 2, 1, 1) and report.findings_available
    as_value = _report(runtime, findings={"U2": {"opened": 1, "overdue": 1}})
    assert _unit(as_value, "U2").findings == FindingsCounts(opened=1, overdue=1)
    assert findings_counts(None) is None


def test_json_shape(runtime: Runtime) -> None:
    build_scene(runtime)
    data = report_json(_report(runtime))
    assert (data["from"], data["to"], data["previous"]) == (
        "2024-05-01",
        "2024-05-31",
        {"from": "2024-03-31", "to": "2024-04-30"},
    )
    assert data["total"]["current"] == {
        "actions": 4,
        "complete": 2,
        "pending": 0,
        "incomplete": 2,
        "unjudged": 0,
        "rate": 0.5,
    }
    assert data["late_attribution"]["via_assignment"] == 1 and data["findings_available"] is False
    assert data["actions"][0]["action_id"] == "A4" and data["actions"][0]["started_at"] == "2024-05-13T08:00:00+00:00"


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (None, date(2024, 5, 31), "needs both"),
        (date(2024, 6, 1), date(2024, 5, 31), "after"),
        (date(2000, 1, 1), date(2024, 5, 31), "at most"),
    ],
)
def test_bad_periods_and_units_are_refused(runtime: Runtime, start: date | None, end: date, message: str) -> None:
    with reading(runtime.sessions) as s, pytest.raises(BadInput, match=message):
        period_report(s, runtime.settings, start, end, None, NOW)
    with reading(runtime.sessions) as s, pytest.raises(BadInput, match="unknown unit"):
        period_report(s, runtime.settings, *MAY, "NO-SUCH-UNIT", NOW)


def test_local_dates_in_the_deployment_zone(runtime: Runtime, settings: Settings) -> None:
    build_scene(runtime)
    shanghai = settings.model_copy(update={"timezone": "Asia/Shanghai"})
    with reading(runtime.sessions) as s:
        # 13 May 08:00 UTC is 16:00 in Shanghai: a one-day report of 13 May holds A4 alone
        report = period_report(s, shanghai, date(2024, 5, 13), date(2024, 5, 13), None, NOW)
    assert [a.action_id for a in report.actions] == ["A4"] and report.timezone == "Asia/Shanghai"


def test_late_in_sql_is_past_the_deadline_not_at_it(runtime: Runtime) -> None:
    """The loader's SQL lateness on each backend agrees with ``is_late`` at the boundary, to the second."""
    t = utc(2024, 5, 10, 8)
    deadline = timedelta(hours=runtime.settings.upload_deadline_hours)
    with transaction(runtime.sessions) as s:
        device(s, "DX", unit(s, "U9").id)
        recording(s, "DX", t, seconds=60, received_at=t + timedelta(seconds=60) + deadline)  # exactly at it
        recording(s, "DX", t, seconds=60, received_at=t + timedelta(seconds=61) + deadline)  # one second past
        recording(s, "DX", t, seconds=60, received_at=t + timedelta(seconds=60))
    u9 = _unit(_report(runtime), "U9")
    assert (u9.uploads.recordings, u9.uploads.late) == (3, 1)
