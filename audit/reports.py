"""The missing-recording report (SPEC §6, §12): what lacks full-process footage, per unit and period.

A period is a pair of local dates in ``BWC_TIMEZONE``, both inclusive, turned into a half-open UTC range
before any query. Everything is loaded in a fixed number of set-based queries, whatever the size of the
period: actions with their devices, officers and links in four, the period's recordings in one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.orm import Session

from audit.shapes import actions_json
from config.errors import BadInput
from config.settings import Settings
from storage.basics import iso, iso_or_none
from storage.models import Action, ActionRecording, Device, Recording, Unit

VERDICTS = ("complete", "pending", "incomplete")


def period_bounds(
    date_from: date | None, date_to: date | None, tz: ZoneInfo
) -> tuple[datetime | None, datetime | None]:
    """[from 00:00, to+1 00:00) local, as UTC; either end may be open."""
    if date_from is not None and date_to is not None and date_from > date_to:
        raise BadInput(f"--from {date_from} is after --to {date_to}")
    lo = _local_midnight(date_from, tz) if date_from else None
    hi = _local_midnight(date_to + timedelta(days=1), tz) if date_to else None
    return lo, hi


def _local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def missing_report(
    session: Session,
    settings: Settings,
    date_from: date | None,
    date_to: date | None,
    unit: str | Collection[str] | None,
    now: datetime,
) -> dict[str, Any]:
    """Actions whose verdict is not ``complete``, per-unit totals, late uploads, missing files, unclaimed.

    ``unit`` is one unit's code, several (a reviewer of several units), or None for every unit."""
    lo, hi = period_bounds(date_from, date_to, settings.tz)
    unit_id = _unit_ids(session, unit)
    in_period = _action_filter(lo, hi, unit_id)
    open_actions = [*in_period, Action.verdict.is_(None) | (Action.verdict != "complete")]
    recordings = _period_recordings(session, lo, hi, unit_id)
    units, total = _unit_totals(session, in_period, now)
    return {
        "from": date_from.isoformat() if date_from else None,
        "to": date_to.isoformat() if date_to else None,
        "unit": unit if unit is None or isinstance(unit, str) else ", ".join(sorted(unit)),
        "timezone": settings.timezone,
        "generated_at": iso(now),
        "actions": actions_json(session, open_actions, now),
        "units": units,
        "total": total,
        "late_uploads": late_uploads(recordings, timedelta(hours=settings.upload_deadline_hours)),
        "missing_files": sequence_holes(recordings),
        "unclaimed": [_recording_json(r) for r in recordings if not r["linked"] or r["device"] is None],
    }


def _unit_ids(session: Session, unit: str | Collection[str] | None) -> list[int] | None:
    if unit is None:
        return None
    codes = {unit} if isinstance(unit, str) else set(unit)
    found = dict(session.execute(select(Unit.code, Unit.id).where(Unit.code.in_(sorted(codes)))).tuples().all())
    if isinstance(unit, str) and unit not in found:
        raise BadInput(f"unknown unit {unit!r}")
    return sorted(found.values())


def _action_filter(lo: datetime | None, hi: datetime | None, unit_id: list[int] | None) -> list[Any]:
    conditions: list[Any] = []
    if lo is not None:
        conditions.append(Action.started_at >= lo)
    if hi is not None:
        conditions.append(Action.started_at < hi)
    if unit_id is not None:
        conditions.append(Action.unit_id.in_(unit_id))
    return conditions


def _unit_totals(session: Session, conditions: list[Any], now: datetime) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per-unit counts by effective verdict, one grouped query; a pending past its grace counts as incomplete."""
    expired = case(
        (and_(Action.verdict == "pending", Action.pending_until.is_not(None), Action.pending_until <= now), 1),
        else_=0,
    )
    query: Select[Any] = (
        select(Unit.code, Action.verdict, expired.label("expired"), func.count())
        .select_from(Action)
        .outerjoin(Unit, Unit.id == Action.unit_id)
        .where(*conditions)
        .group_by(Unit.code, Action.verdict, expired)
    )
    counts: dict[str | None, dict[str, int]] = defaultdict(lambda: dict.fromkeys(VERDICTS, 0) | {"unjudged": 0})
    for code, verdict, is_expired, n in session.execute(query):
        key = "incomplete" if verdict == "pending" and is_expired else (verdict if verdict in VERDICTS else "unjudged")
        counts[code][key] += n
    units = [_unit_row(code, counts[code]) for code in sorted(counts, key=lambda c: (c is None, c or ""))]
    total = _unit_row(None, {k: sum(c[k] for c in counts.values()) for k in (*VERDICTS, "unjudged")})
    return units, total


def _unit_row(code: str | None, c: dict[str, int]) -> dict[str, Any]:
    actions = sum(c.values())
    return {
        "unit": code,
        "actions": actions,
        "complete": c["complete"],
        "pending": c["pending"],
        "incomplete": c["incomplete"],
        "unjudged": c["unjudged"],
        "rate": round(c["complete"] / actions, 4) if actions else None,
    }


def _period_recordings(
    session: Session, lo: datetime | None, hi: datetime | None, unit_id: list[int] | None
) -> list[dict[str, Any]]:
    """The period's recordings (by device start time) with their device and whether any action claims them."""
    conditions: list[Any] = [Recording.started_at.is_not(None)]
    if lo is not None:
        conditions.append(Recording.started_at >= lo)
    if hi is not None:
        conditions.append(Recording.started_at < hi)
    if unit_id is not None:
        conditions.append(Recording.device_id.in_(select(Device.id).where(Device.unit_id.in_(unit_id))))
    query = (
        select(
            Recording.id,
            Device.serial,
            Recording.sequence,
            Recording.started_at,
            Recording.ended_at,
            Recording.received_at,
            Recording.original_name,
        )
        .select_from(Recording)
        .outerjoin(Device, Device.id == Recording.device_id)
        .where(*conditions)
        .order_by(Recording.device_id, Recording.started_at, Recording.sequence, Recording.id)
    )
    # The claimed ones in a second indexed query: a correlated EXISTS makes PostgreSQL hash every link there is.
    linked = set(
        session.scalars(
            select(ActionRecording.recording_id)
            .join(Recording, Recording.id == ActionRecording.recording_id)
            .where(*conditions)
        )
    )
    keys = ("id", "device", "sequence", "started_at", "ended_at", "received_at", "original_name")
    rows = [dict(zip(keys, row, strict=True)) for row in session.execute(query)]
    for row in rows:
        row["linked"] = row["id"] in linked
    return rows


def late_uploads(recordings: Iterable[dict[str, Any]], deadline: timedelta) -> list[dict[str, Any]]:
    """Recordings received more than ``deadline`` after they ended (device clock vs. our clock)."""
    late = [r for r in recordings if r["received_at"] > (r["ended_at"] or r["started_at"]) + deadline]
    late.sort(key=lambda r: (r["received_at"], r["id"]))
    rows = []
    for r in late:
        after_end = (r["received_at"] - (r["ended_at"] or r["started_at"])).total_seconds() / 3600
        rows.append(
            _recording_json(r)
            | {
                "hours_after_end": round(after_end, 2),
                "hours_late": round(after_end - deadline.total_seconds() / 3600, 2),
            }
        )
    return rows


def sequence_holes(recordings: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per device, in time order: a jump forward in the sequence number is a missing file; a drop is a reset."""
    holes = []
    previous: dict[str, Any] | None = None
    for r in recordings:
        if r["device"] is None or r["sequence"] is None:
            continue
        if previous is not None and previous["device"] == r["device"] and r["sequence"] > previous["sequence"] + 1:
            holes.append(
                {
                    "device": r["device"],
                    "from_sequence": previous["sequence"] + 1,
                    "to_sequence": r["sequence"] - 1,
                    "count": r["sequence"] - previous["sequence"] - 1,
                    "after_recording": previous["id"],
                    "after_ended_at": iso_or_none(previous["ended_at"]),
                    "before_recording": r["id"],
                    "before_started_at": iso(r["started_at"]),
                }
            )
        previous = r
    return holes


def _recording_json(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": r["id"],
        "device": r["device"],
        "sequence": r["sequence"],
        "original_name": r["original_name"],
        "started_at": iso(r["started_at"]),
        "ended_at": iso_or_none(r["ended_at"]),
        "received_at": iso(r["received_at"]),
    }
