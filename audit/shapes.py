"""JSON shapes shared by the CLI and the API (SPEC §12)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from storage.basics import iso, iso_or_none
from storage.models import Action, ActionDevice, ActionOfficer, ActionRecording, Device, Officer, Unit

__all__ = ["ACTION_FIELDS", "action_json", "actions_json", "effective_verdict", "shape_action"]

# The columns the action shape reads, for a reader that selects them as a Core row instead of loading ``Action``
# (the case lookup, ``audit.case_view``): ``Action.id`` first, the unit's code as ``unit`` (outer join ``Unit``).
ACTION_FIELDS = (
    Action.id,
    Action.action_id,
    Action.case_number,
    Unit.code.label("unit"),
    Action.started_at,
    Action.ended_at,
    Action.location,
    Action.kind,
    Action.verdict,
    Action.reasons,
    Action.coverage_computed_at,
    Action.pending_until,
)


def effective_verdict(action: Action | Row[Any], now: datetime) -> str | None:
    """The stored verdict as of ``now``: a ``pending`` past ``pending_until`` reads as ``incomplete``."""
    if action.verdict == "pending" and action.pending_until is not None and now >= action.pending_until:
        return "incomplete"
    return action.verdict


def action_json(session: Session, action: Action, now: datetime) -> dict[str, Any]:
    """An action with its devices (serials), officers (codes), effective verdict, reasons and recording ids."""
    return actions_json(session, [Action.id == action.id], now)[0]


def actions_json(session: Session, conditions: list[Any], now: datetime) -> list[dict[str, Any]]:
    """The SPEC §12 action shape (as ``shapes.action_json``) for every matching action, in four queries."""
    actions = session.scalars(select(Action).where(*conditions).order_by(Action.started_at, Action.action_id)).all()
    if not actions:
        return []
    ids = select(Action.id).where(*conditions).scalar_subquery()
    devices: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for action_id, serial, source in session.execute(
        select(ActionDevice.action_id, Device.serial, ActionDevice.source)
        .join(Device, Device.id == ActionDevice.device_id)
        .where(ActionDevice.action_id.in_(ids))
        .order_by(Device.serial)
    ):
        devices[action_id].append((serial, source))
    officers: dict[int, list[str]] = defaultdict(list)
    for action_id, code in session.execute(
        select(ActionOfficer.action_id, Officer.code)
        .join(Officer, Officer.id == ActionOfficer.officer_id)
        .where(ActionOfficer.action_id.in_(ids))
        .order_by(Officer.code)
    ):
        officers[action_id].append(code)
    links: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    for action_id, recording_id, manual in session.execute(
        select(ActionRecording.action_id, ActionRecording.recording_id, ActionRecording.manual)
        .where(ActionRecording.action_id.in_(ids))
        .order_by(ActionRecording.recording_id)
    ):
        links[action_id].append((recording_id, manual))
    return [
        shape_action(a, a.unit.code if a.unit is not None else None, devices[a.id], officers[a.id], links[a.id], now)
        for a in actions
    ]


def shape_action(
    action: Action | Row[Any],
    unit: str | None,
    devices: list[tuple[str, str]],
    officers: list[str],
    links: list[tuple[int, bool]],
    now: datetime,
) -> dict[str, Any]:
    return {
        "action_id": action.action_id,
        "case_number": action.case_number,
        "unit": unit,
        "started_at": iso(action.started_at),
        "ended_at": iso(action.ended_at),
        "location": action.location,
        "kind": action.kind,
        "devices": [serial for serial, _ in devices],
        "devices_resolved": [serial for serial, source in devices if source == "assignment"],
        "officers": officers,
        "verdict": effective_verdict(action, now),
        "reasons": list(action.reasons or []),
        "recordings": [rid for rid, _ in links],
        "recordings_manual": [rid for rid, manual in links if manual],
        "coverage_computed_at": iso_or_none(action.coverage_computed_at),
        "pending_until": iso_or_none(action.pending_until),
    }
