"""The period report from the database: bounds, rows, findings, then the pure rules (SPEC §14).

Findings come from the ledger (SPEC §13) through ``findings``: a callable
``(session, start, end, unit) -> per-unit counts`` or the counts themselves. Counts may be a mapping from
unit code to a mapping (or object) with ``opened, closed_in_time, closed_late, overdue``, or a list of such
rows each with a ``unit``. None: no findings data, and the report says so.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from sqlalchemy.orm import Session

from audit.findings_ledger import findings_summary
from audit.period_load import load_actions, load_previous, load_uploads, unit_id_of
from audit.period_report import FindingsCounts, Period, PeriodReport, build_period_report
from audit.reports import period_bounds
from config.errors import BadInput
from config.settings import Settings
from storage.basics import iso

FindingsSource = Callable[[Session, datetime, datetime, str | None], Any]
Findings = FindingsSource | Mapping[Any, Any] | Iterable[Any] | None
MAX_DAYS = 366 * 5


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic collector while a year's rows load: a million short-lived tuples make it sweep the
    whole heap again and again (half the report's time at city scale), and nothing cyclic is made here."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def ledger_findings() -> Findings:
    """The findings ledger's per-unit summary (SPEC §13): opened, closed in time, closed late, overdue."""
    return findings_summary


def period_of(start: date | None, end: date | None) -> Period:
    """Both ends are required: a written report is for a stated period."""
    if start is None or end is None:
        raise BadInput("the period report needs both from and to (YYYY-MM-DD)")
    if start > end:
        raise BadInput(f"from {start} is after to {end}")
    if (end - start).days >= MAX_DAYS:
        raise BadInput(f"a period report covers at most {MAX_DAYS} days")
    return Period(start, end)


def _counts(value: Any) -> FindingsCounts:
    def get(key: str) -> int:
        found = value.get(key, 0) if isinstance(value, Mapping) else getattr(value, key, 0)
        return int(found or 0)

    return FindingsCounts(get("opened"), get("closed_in_time"), get("closed_late"), get("overdue"))


def findings_counts(value: Any) -> dict[str | None, FindingsCounts] | None:
    """Per-unit counts from whichever shape the ledger gives (see the module's docstring)."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return {unit: _counts(v) for unit, v in value.items()}
    rows: dict[str | None, FindingsCounts] = {}
    for row in value:
        unit = row.get("unit") if isinstance(row, Mapping) else getattr(row, "unit", None)
        rows[unit] = _counts(row)
    return rows


def period_report(
    session: Session,
    settings: Settings,
    start: date | None,
    end: date | None,
    unit: str | None,
    now: datetime,
    findings: Findings = None,
) -> PeriodReport:
    """The report for local dates ``start``–``end`` (inclusive) against the previous period of equal length."""
    period = period_of(start, end)
    before = period.previous()
    unit_id = unit_id_of(session, unit)
    lo, hi = period_bounds(period.start, period.end, settings.tz)
    prev_lo, _ = period_bounds(before.start, before.end, settings.tz)
    assert lo is not None and hi is not None and prev_lo is not None
    if callable(findings):
        findings = findings(session, lo, hi, unit)
    with _gc_paused():
        current = load_actions(session, lo, hi, unit_id, now)
        previous = load_previous(session, prev_lo, lo, unit_id, now)
        uploads = load_uploads(session, lo, hi, unit_id, settings.upload_deadline_hours * 3600)
        return build_period_report(
            period,
            current,
            previous,
            uploads,
            unit=unit,
            timezone=settings.timezone,
            generated_at=now,
            findings=findings_counts(findings),
        )


def _section(section: Any) -> dict[str, Any]:
    return {
        "unit": section.unit,
        "current": asdict(section.current) | {"rate": section.current.rate},
        "previous": asdict(section.previous) | {"rate": section.previous.rate},
        "change": section.change,
        "uploads": asdict(section.uploads) | {"late_rate": section.uploads.late_rate},
        "reasons": [{"code": code, "actions": n} for code, n in section.reasons],
        "findings": None if section.findings is None else asdict(section.findings),
    }


def _breakdown(b: Any) -> dict[str, Any]:
    return {
        "key": b.key,
        "current": asdict(b.current) | {"rate": b.current.rate},
        "uploads": asdict(b.uploads) | {"late_rate": b.uploads.late_rate},
    }


def report_json(report: PeriodReport) -> dict[str, Any]:
    """The report as JSON (times UTC); actions are listed by id for the drill-down, unit by unit."""
    return {
        "from": report.period.start.isoformat(),
        "to": report.period.end.isoformat(),
        "previous": {"from": report.previous.start.isoformat(), "to": report.previous.end.isoformat()},
        "unit": report.unit,
        "timezone": report.timezone,
        "generated_at": iso(report.generated_at),
        "units": [_section(s) for s in report.units],
        "total": _section(report.total),
        "devices": [_breakdown(b) for b in report.devices],
        "officers": [_breakdown(b) for b in report.officers],
        "late_attribution": asdict(report.attribution),
        "findings_available": report.findings_available,
        "actions": [
            {
                "action_id": a.action_id,
                "unit": a.unit,
                "started_at": iso(a.started_at),
                "verdict": a.verdict,
                "reasons": list(a.reasons),
                "devices": list(a.devices),
                "carriers": list(a.carriers),
                "location": a.location,
            }
            for a in report.actions
        ],
    }
