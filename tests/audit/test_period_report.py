"""The period report's pure rules: periods, tallies, reasons, lateness and attribution, without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from audit.period_report import (
    ActionLine,
    Attribution,
    Period,
    Tally,
    UploadLine,
    attribution,
    build_period_report,
    is_late,
    tally,
    top_reasons,
)

T = datetime(2024, 5, 10, 8, tzinfo=UTC)
DAY = timedelta(hours=24)


def _action(action_id: str, verdict: str, unit: str | None = "U1", reasons: tuple[str, ...] = ()) -> ActionLine:
    return ActionLine(1, action_id, unit, T, verdict, reasons)


def test_previous_period_has_equal_length() -> None:
    assert Period(date(2024, 1, 1), date(2024, 6, 30)).previous() == Period(
        date(2023, 7, 3), date(2023, 12, 31)
    )  # 182 days
    assert Period(date(2024, 3, 1), date(2024, 3, 1)).previous() == Period(date(2024, 2, 29), date(2024, 2, 29))
    assert Period(date(2024, 5, 1), date(2024, 5, 31)).days == 31


def test_tally_rate_and_reasons_counted_once_per_action() -> None:
    actions = [
        _action("a", "complete"),
        _action("b", "incomplete", reasons=("shortfall", "shortfall", "no_audio")),
        _action("c", "pending", reasons=("no_footage",)),
        _action("d", "unjudged"),
    ]
    t = tally(actions)
    assert (t.actions, t.complete, t.pending, t.incomplete, t.unjudged, t.rate) == (4, 1, 1, 1, 1, 0.25)
    assert tally([]).rate is None
    assert top_reasons(actions) == (("no_audio", 1), ("no_footage", 1), ("shortfall", 1))
    assert top_reasons([_action("x", "complete", reasons=("shortfall",))]) == ()


def test_late_means_past_the_deadline_not_at_it() -> None:
    assert not is_late(T, T + DAY, DAY) and is_late(T, T + DAY + timedelta(seconds=1), DAY)


def test_unit_filter_keeps_what_is_attributed_to_the_unit_and_says_how() -> None:
    uploads = [
        UploadLine("D1", "U1", "device", True, 5),
        UploadLine("D1", "U1", "device", False, 7),
        UploadLine("D8", "U1", "action", True),
        UploadLine("D9", "U2", "assignment", True),
        UploadLine("D7", None, None, True),
        UploadLine("D6", None, None, False),
    ]
    assert attribution(uploads) == Attribution(3, 1, 1, 1)
    report = build_period_report(
        Period(date(2024, 5, 1), date(2024, 5, 31)),
        [_action("a", "complete"), _action("b", "complete", unit="U2")],
        {"U1": Tally(2, 2), "U2": Tally(1, 0, 0, 1)},
        uploads,
        unit="U1",
        timezone="UTC",
        generated_at=T,
    )
    assert [s.unit for s in report.units] == ["U1"]
    assert (report.total.uploads.recordings, report.total.uploads.late) == (13, 6)
    assert report.attribution == Attribution(1, 1, 0, 0)
    assert (report.total.previous.actions, report.total.change) == (2, 0.0)
    devices = {b.key: (b.uploads.recordings, b.uploads.late) for b in report.devices}
    assert devices == {"D1": (12, 5), "D8": (1, 1)}
    assert not report.findings_available and report.units[0].findings is None
