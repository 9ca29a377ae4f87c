"""Reading the ledger (SPEC §13): findings as JSON, filtered lists, per-unit tallies and a period summary.

Per unit: ``open`` (open or rectifying), ``overdue`` (of those, past due), ``closed_in_time`` (closed by its
``due_at``), ``closed_late`` and ``waived``. :func:`findings_summary` is the pure read the period report
(SPEC §14) calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from audit.findings_rules import CLOSED, KINDS, LIVE, STATUSES, WAIVED, is_overdue
from config.errors import BadInput, NotFound
from storage.basics import iso, iso_or_none
from storage.models import Finding, Unit

NO_UNIT = "(no unit 无单位)"


@dataclass(frozen=True)
class Filters:
    """What ``bwc findings list`` and ``GET /findings`` may filter by.

    ``units`` is a reviewer's scope when they have several units and named none: any of them."""

    unit: str | None = None
    status: str | None = None
    kind: str | None = None
    overdue: bool = False
    subject: str | None = None
    units: frozenset[str] | None = None

    @classmethod
    def covering(cls, covered: str | frozenset[str] | None, **rest: Any) -> Filters:
        """Filters over what ``audit.access.report_units`` says a caller's ledger covers."""
        if isinstance(covered, frozenset):
            return cls(units=covered, **rest)
        return cls(unit=covered, **rest)


def finding_json(finding: Finding, now: datetime) -> dict[str, Any]:
    """A finding as the CLI and the API show it, with its ``history``."""
    return {
        "id": finding.id,
        "kind": finding.kind,
        "subject": finding.subject,
        "unit": finding.unit.code if finding.unit is not None else None,
        "category": finding.category,
        "status": finding.status,
        "owner": finding.owner,
        "automatic": finding.automatic,
        "cause_present": finding.cause_present,
        "opened_at": iso(finding.opened_at),
        "due_at": iso(finding.due_at),
        "closed_at": iso_or_none(finding.closed_at),
        "overdue": is_overdue(finding.status, finding.due_at, now),
        "closed_in_time": None if finding.closed_at is None else finding.closed_at <= finding.due_at,
        "details": finding.details,
        "history": finding.history,
    }


def _check(filters: Filters) -> None:
    if filters.status is not None and filters.status not in STATUSES:
        raise BadInput(f"unknown status {filters.status!r}; use one of {', '.join(STATUSES)}", code="bad_status")
    if filters.kind is not None and filters.kind not in KINDS:
        raise BadInput(f"unknown kind {filters.kind!r}; use one of {', '.join(KINDS)}", code="bad_kind")


def _matching(session: Session, query: Select[Any], filters: Filters, now: datetime) -> Select[Any]:
    """``query`` narrowed to the findings matching ``filters``."""
    _check(filters)
    if filters.unit is not None:
        unit_id = session.scalar(select(Unit.id).where(Unit.code == filters.unit))
        if unit_id is None:
            raise NotFound(f"no unit {filters.unit!r}", code="unit_not_found")
        query = query.where(Finding.unit_id == unit_id)
    if filters.units is not None:
        units = select(Unit.id).where(Unit.code.in_(sorted(filters.units))).correlate(None)  # not the tallies' Unit
        query = query.where(Finding.unit_id.in_(units))
    if filters.status is not None:
        query = query.where(Finding.status == filters.status)
    if filters.kind is not None:
        query = query.where(Finding.kind == filters.kind)
    if filters.subject is not None:
        query = query.where(Finding.subject == filters.subject)
    if filters.overdue:
        query = query.where(Finding.status.in_(sorted(LIVE)), Finding.due_at < now)
    return query


def list_findings(
    session: Session, filters: Filters, now: datetime, limit: int | None = None, offset: int = 0
) -> list[Finding]:
    """Findings matching ``filters``, oldest first."""
    query = _matching(session, select(Finding), filters, now)
    query = query.order_by(Finding.opened_at, Finding.id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


TALLY_KEYS = ("open", "overdue", "closed_in_time", "closed_late", "waived")


def tallies(session: Session, filters: Filters, now: datetime) -> tuple[list[dict[str, Any]], int]:
    """Per unit: open, overdue, closed in time, closed late, waived (and a total row, unit None), and how many
    findings match: counted by the database, so that a page of the ledger loads only the findings it shows."""
    live = Finding.status.in_(sorted(LIVE))
    closed = and_(Finding.status == CLOSED, Finding.closed_at.is_not(None))
    counts = {
        "open": live,
        "overdue": and_(live, Finding.due_at < now),
        "closed_in_time": and_(closed, Finding.closed_at <= Finding.due_at),
        "closed_late": and_(closed, Finding.closed_at > Finding.due_at),
        "waived": Finding.status == WAIVED,
    }
    columns = [func.sum(case((condition, 1), else_=0)) for condition in counts.values()]
    query = select(Unit.code, func.count(Finding.id), *columns).outerjoin(Unit, Unit.id == Finding.unit_id)
    query = _matching(session, query, filters, now).group_by(Unit.code)
    rows: dict[str, dict[str, Any]] = {}
    matched = 0
    for code, n, *figures in session.execute(query):
        unit = code if code is not None else NO_UNIT
        rows[unit] = {"unit": unit, **{k: int(v or 0) for k, v in zip(TALLY_KEYS, figures, strict=True)}}
        matched += n
    ordered = [rows[k] for k in sorted(rows)]
    total = {"unit": None, **{k: sum(r[k] for r in ordered) for k in TALLY_KEYS}}
    return [*ordered, total], matched


def findings_summary(
    session: Session, start: datetime, end: datetime, unit: str | None = None, now: datetime | None = None
) -> dict[str | None, dict[str, int]]:
    """Per unit code (None: no unit) over [start, end): findings opened, closed in time, closed late, and
    overdue at the period's end (or at ``now`` if earlier). For the period report (SPEC §14)."""
    as_of = min(end, now) if now is not None else end
    query = (
        select(Unit.code, Finding.opened_at, Finding.due_at, Finding.closed_at, Finding.status)
        .outerjoin(Unit, Unit.id == Finding.unit_id)
        .where(
            Finding.opened_at < end,
            or_(Finding.opened_at >= start, Finding.closed_at.is_(None), Finding.closed_at >= start),
        )
    )
    if unit is not None:
        query = query.where(Unit.code == unit)
    summary: dict[str | None, dict[str, int]] = {}
    for code, opened, due, closed, status in session.execute(query):
        row = summary.setdefault(code, {"opened": 0, "closed_in_time": 0, "closed_late": 0, "overdue": 0})
        if opened >= start:
            row["opened"] += 1
        if closed is not None and status == CLOSED and start <= closed < end:
            row["closed_in_time" if closed <= due else "closed_late"] += 1
        still_open = closed is None or closed >= as_of
        if still_open and status != WAIVED and due < as_of:
            row["overdue"] += 1
    return summary


def ledger(session: Session, filters: Filters, now: datetime, timezone: str) -> dict[str, Any]:
    """The work ledger (工作台账): the findings matching ``filters`` and their per-unit tallies."""
    found = list_findings(session, filters, now)
    units, _matched = tallies(session, filters, now)
    return {
        "generated_at": iso(now),
        "timezone": timezone,
        "filters": {
            "unit": filters.unit,
            "status": filters.status,
            "kind": filters.kind,
            "overdue": filters.overdue,
            **({"units": sorted(filters.units)} if filters.units is not None else {}),
        },
        "findings": [finding_json(f, now) for f in found],
        "units": units,
    }
