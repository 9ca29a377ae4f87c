"""Rows for the period report, in a fixed number of set-based queries whatever the period's size.

The period's actions in one query, their devices and carriers in two more, the previous period's in one
grouped query; the period's recordings counted per device in one grouped query, and those of devices without
a unit attributed in three (the rows, a claiming action, the device's assignment). The rules that turn
rows into figures live in ``audit/period_report.py``.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Interval, and_, case, func, literal, null, or_, select
from sqlalchemy.orm import Session

from audit.period_report import VERDICT_KEYS, ActionLine, Tally, UploadLine, Via
from config.errors import BadInput
from storage.models import (
    Action,
    ActionDevice,
    ActionRecording,
    Device,
    DeviceAssignment,
    Officer,
    Recording,
    Unit,
)


def unit_id_of(session: Session, unit: str | None) -> int | None:
    """The id of a unit code; an unknown code is bad input, not an empty report."""
    if unit is None:
        return None
    found = session.scalar(select(Unit.id).where(Unit.code == unit))
    if found is None:
        raise BadInput(f"unknown unit {unit!r}")
    return found


def _reason_codes(reasons: Any) -> tuple[str, ...]:
    if not isinstance(reasons, list):
        return ()
    return tuple(str(r["code"]) for r in reasons if isinstance(r, dict) and r.get("code"))


def _expired(now: datetime) -> Any:
    """1 for a pending verdict past its grace (it counts as incomplete), in SQL."""
    return case(
        (and_(Action.verdict == "pending", Action.pending_until.is_not(None), Action.pending_until <= now), 1),
        else_=0,
    )


def load_actions(session: Session, lo: datetime, hi: datetime, unit_id: int | None, now: datetime) -> list[ActionLine]:
    """Actions started in [lo, hi) with their devices and who carried them, in two queries.

    Core rows (no ORM), reasons only where the verdict is not complete, expiry decided in SQL: a year at city
    scale is some 100,000 actions, and per-row work is what costs.
    """
    conditions: list[Any] = [Action.started_at >= lo, Action.started_at < hi]
    if unit_id is not None:
        conditions.append(Action.unit_id == unit_id)
    conn = session.connection()
    rows = conn.execute(
        select(
            Action.id,
            Action.action_id,
            Unit.code,
            Action.started_at,
            Action.verdict,
            _expired(now),
            case((Action.verdict == "complete", null()), else_=Action.reasons).label("reasons"),
            Action.location,
        )
        .select_from(Action)
        .outerjoin(Unit, Unit.id == Action.unit_id)
        .where(*conditions)
    ).all()
    devices: dict[int, set[str]] = defaultdict(set)
    carriers: dict[int, set[str]] = defaultdict(set)
    carried = and_(
        DeviceAssignment.device_id == ActionDevice.device_id,
        DeviceAssignment.valid_from < Action.ended_at,
        or_(DeviceAssignment.valid_to.is_(None), DeviceAssignment.valid_to > Action.started_at),
    )
    for action_id, serial, code in conn.execute(
        select(ActionDevice.action_id, Device.serial, Officer.code)
        .select_from(ActionDevice)
        .join(Action, Action.id == ActionDevice.action_id)
        .join(Device, Device.id == ActionDevice.device_id)
        .outerjoin(DeviceAssignment, carried)
        .outerjoin(Officer, Officer.id == DeviceAssignment.officer_id)
        .where(*conditions)
    ).all():  # fetched at once: row-by-row fetching costs more than the query
        devices[action_id].add(serial)
        if code is not None:
            carriers[action_id].add(code)
    return [
        ActionLine(
            id=row_id,
            action_id=action_id,
            unit=unit,
            started_at=started_at,
            verdict="incomplete" if expired else (verdict if verdict in VERDICT_KEYS[:3] else "unjudged"),
            reasons=_reason_codes(reasons),
            devices=tuple(sorted(devices[row_id])) if row_id in devices else (),
            carriers=tuple(sorted(carriers[row_id])) if row_id in carriers else (),
            location=location,
        )
        for row_id, action_id, unit, started_at, verdict, expired, reasons, location in rows
    ]


def load_previous(
    session: Session, lo: datetime, hi: datetime, unit_id: int | None, now: datetime
) -> dict[str | None, Tally]:
    """The previous period's actions as per-unit tallies, in one grouped query (only its counts are shown)."""
    conditions: list[Any] = [Action.started_at >= lo, Action.started_at < hi]
    if unit_id is not None:
        conditions.append(Action.unit_id == unit_id)
    expired = _expired(now)
    counts: dict[str | None, Counter[str]] = defaultdict(Counter)
    for code, verdict, is_expired, n in session.execute(
        select(Unit.code, Action.verdict, expired, func.count())
        .select_from(Action)
        .outerjoin(Unit, Unit.id == Action.unit_id)
        .where(*conditions)
        .group_by(Unit.code, Action.verdict, expired)
    ):
        verdict = "incomplete" if verdict == "pending" and is_expired else verdict
        counts[code][verdict if verdict in VERDICT_KEYS else "unjudged"] += n
    return {code: Tally(sum(c.values()), *(c[k] for k in VERDICT_KEYS)) for code, c in counts.items()}


def late_flag(session: Session, deadline_seconds: float) -> Any:
    """1 when a recording was received more than the deadline after it ended (else 0), in the backend's SQL:
    the same rule as ``audit.period_report.is_late``, evaluated where the rows are."""
    ended = func.coalesce(Recording.ended_at, Recording.started_at)
    if session.get_bind().dialect.name == "postgresql":  # timestamp against timestamp + interval: no per-row epoch
        late = Recording.received_at > ended + literal(timedelta(seconds=deadline_seconds), Interval())
    else:  # SQLite keeps UTC text; julianday counts days
        late = func.julianday(Recording.received_at) - func.julianday(ended) > float(deadline_seconds) / 86400
    return case((late, 1), else_=0)


def load_uploads(
    session: Session, lo: datetime, hi: datetime, unit_id: int | None, deadline_seconds: float
) -> list[UploadLine]:
    """Recordings started in [lo, hi) with a unit: their device's, else a claiming action's, else the carrier's.

    A unit's own devices' recordings are counted in SQL per device id and lateness (no join: a year is some
    half a million rows, and grouping by an integer is what is cheap) and named from the few devices here;
    those of devices without a unit (rare) come one by one to be attributed. With ``unit_id``, other units'
    devices' counts are dropped.
    """
    late = late_flag(session, deadline_seconds)
    period: list[Any] = [Recording.started_at >= lo, Recording.started_at < hi]
    owners = {
        device_id: (serial, code, owner)
        for device_id, serial, code, owner in session.execute(
            select(Device.id, Device.serial, Unit.code, Unit.id).join(Unit, Unit.id == Device.unit_id)
        )
    }
    lines: list[UploadLine] = []
    for device_id, is_late, n in session.execute(
        select(Recording.device_id, late, func.count()).where(*period).group_by(Recording.device_id, late)
    ):
        owned = owners.get(device_id)
        if owned is not None and (unit_id is None or owned[2] == unit_id):  # unit-less devices: below
            lines.append(UploadLine(owned[0], owned[1], "device", bool(is_late), n))
    unitless = [*period, Device.unit_id.is_(None)]
    rows = session.execute(
        select(Recording.id, Device.serial, late)
        .select_from(Recording)
        .outerjoin(Device, Device.id == Recording.device_id)
        .where(*unitless)
    ).all()
    by_action: dict[int, str] = {}
    for rec_id, code in session.execute(
        select(ActionRecording.recording_id, Unit.code)
        .join(Recording, Recording.id == ActionRecording.recording_id)
        .outerjoin(Device, Device.id == Recording.device_id)
        .join(Action, Action.id == ActionRecording.action_id)
        .join(Unit, Unit.id == Action.unit_id)
        .where(*unitless)
    ):
        by_action[rec_id] = min(code, by_action.get(rec_id, code))  # several claiming units: the first by code
    by_assignment: dict[int, str] = {}
    for rec_id, code in session.execute(
        select(Recording.id, Unit.code)
        .join(Device, Device.id == Recording.device_id)
        .join(
            DeviceAssignment,
            and_(
                DeviceAssignment.device_id == Recording.device_id,
                DeviceAssignment.valid_from <= Recording.started_at,
                or_(DeviceAssignment.valid_to.is_(None), DeviceAssignment.valid_to > Recording.started_at),
            ),
        )
        .join(Officer, Officer.id == DeviceAssignment.officer_id)
        .join(Unit, Unit.id == Officer.unit_id)
        .where(*unitless)
    ):
        by_assignment[rec_id] = min(code, by_assignment.get(rec_id, code))
    for rec_id, serial, is_late in rows:
        via: Via | None = "action" if rec_id in by_action else "assignment" if rec_id in by_assignment else None
        unit = by_action.get(rec_id) or by_assignment.get(rec_id)
        lines.append(UploadLine(serial, unit, via, bool(is_late)))
    return lines
