"""Rows for the period report, in a fixed number of set-based queries whatever the period's size.

Actions of both periods in one query, the current period's devices and carriers in two more; the period's
recordings in one, and the units of recordings whose device has none in two (through a claiming action,
through the device's assignment). The rules that turn rows into figures live in ``audit/period_report.py``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, aliased

from audit.period_report import ActionLine, UploadLine, Via
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


def effective_verdict(verdict: str | None, pending_until: datetime | None, now: datetime) -> str:
    """As the missing report counts it: a pending verdict past its grace is incomplete; none is unjudged."""
    if verdict == "pending" and pending_until is not None and pending_until <= now:
        return "incomplete"
    return verdict if verdict in ("complete", "pending", "incomplete") else "unjudged"


def _reason_codes(reasons: Any) -> tuple[str, ...]:
    if not isinstance(reasons, list):
        return ()
    return tuple(str(r["code"]) for r in reasons if isinstance(r, dict) and r.get("code"))


def load_actions(
    session: Session, lo: datetime, hi: datetime, unit_id: int | None, now: datetime, *, details: bool
) -> list[ActionLine]:
    """Actions started in [lo, hi); with ``details`` also their devices and who carried them."""
    conditions: list[Any] = [Action.started_at >= lo, Action.started_at < hi]
    if unit_id is not None:
        conditions.append(Action.unit_id == unit_id)
    rows = session.execute(
        select(
            Action.id,
            Action.action_id,
            Unit.code,
            Action.started_at,
            Action.verdict,
            Action.pending_until,
            Action.reasons,
            Action.location,
        )
        .select_from(Action)
        .outerjoin(Unit, Unit.id == Action.unit_id)
        .where(*conditions)
    ).all()
    devices: dict[int, list[str]] = defaultdict(list)
    carriers: dict[int, set[str]] = defaultdict(set)
    if details:
        for action_id, serial in session.execute(
            select(ActionDevice.action_id, Device.serial)
            .join(Action, Action.id == ActionDevice.action_id)
            .join(Device, Device.id == ActionDevice.device_id)
            .where(*conditions)
        ):
            devices[action_id].append(serial)
        for action_id, code in session.execute(
            select(ActionDevice.action_id, Officer.code)
            .join(Action, Action.id == ActionDevice.action_id)
            .join(
                DeviceAssignment,
                and_(
                    DeviceAssignment.device_id == ActionDevice.device_id,
                    DeviceAssignment.valid_from < Action.ended_at,
                    or_(DeviceAssignment.valid_to.is_(None), DeviceAssignment.valid_to > Action.started_at),
                ),
            )
            .join(Officer, Officer.id == DeviceAssignment.officer_id)
            .where(*conditions)
        ):
            carriers[action_id].add(code)
    return [
        ActionLine(
            id=row_id,
            action_id=action_id,
            unit=unit,
            started_at=started_at,
            verdict=effective_verdict(verdict, pending_until, now),
            reasons=_reason_codes(reasons),
            devices=tuple(sorted(devices.get(row_id, ()))),
            carriers=tuple(sorted(carriers.get(row_id, ()))),
            location=location,
        )
        for row_id, action_id, unit, started_at, verdict, pending_until, reasons, location in rows
    ]


def load_uploads(session: Session, lo: datetime, hi: datetime, unit_id: int | None) -> list[UploadLine]:
    """Recordings started in [lo, hi) with a unit: their device's, else a claiming action's, else the carrier's.

    With ``unit_id``, recordings of other units' devices are left out in SQL; those of devices without a
    unit are kept, as the rules may attribute them to this unit.
    """
    device_unit = aliased(Unit)
    conditions: list[Any] = [Recording.started_at >= lo, Recording.started_at < hi]
    if unit_id is not None:
        conditions.append(or_(Device.unit_id == unit_id, Device.unit_id.is_(None)))
    rows = session.execute(
        select(
            Recording.id,
            Device.serial,
            device_unit.code,
            Recording.started_at,
            Recording.ended_at,
            Recording.received_at,
        )
        .select_from(Recording)
        .outerjoin(Device, Device.id == Recording.device_id)
        .outerjoin(device_unit, device_unit.id == Device.unit_id)
        .where(*conditions)
    ).all()
    unitless = [*conditions, Device.unit_id.is_(None)]
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
    lines = []
    for rec_id, serial, code, started_at, ended_at, received_at in rows:
        via: Via | None = None
        if code is not None:
            via = "device"
        elif rec_id in by_action:
            code, via = by_action[rec_id], "action"
        elif rec_id in by_assignment:
            code, via = by_assignment[rec_id], "assignment"
        lines.append(UploadLine(rec_id, serial, code, via, ended_at or started_at, received_at))
    return lines
