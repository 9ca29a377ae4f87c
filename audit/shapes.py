"""JSON shapes shared by the CLI and the API (SPEC §12)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bwc.audit.coverage import iso
from bwc.audit.linking import effective_verdict
from bwc.storage.models import Action, ActionDevice, ActionOfficer, ActionRecording, Device, Officer

__all__ = ["action_json", "iso", "iso_or_none"]


def iso_or_none(value: datetime | None) -> str | None:
    return None if value is None else iso(value)


def action_json(session: Session, action: Action, now: datetime) -> dict[str, Any]:
    """An action with its devices (serials), officers (codes), effective verdict, reasons and recording ids."""
    devices = session.execute(
        select(Device.serial, ActionDevice.source)
        .join(ActionDevice, ActionDevice.device_id == Device.id)
        .where(ActionDevice.action_id == action.id)
        .order_by(Device.serial)
    ).all()
    officers = session.scalars(
        select(Officer.code)
        .join(ActionOfficer, ActionOfficer.officer_id == Officer.id)
        .where(ActionOfficer.action_id == action.id)
        .order_by(Officer.code)
    ).all()
    links = session.execute(
        select(ActionRecording.recording_id, ActionRecording.manual)
        .where(ActionRecording.action_id == action.id)
        .order_by(ActionRecording.recording_id)
    ).all()
    return {
        "action_id": action.action_id,
        "case_number": action.case_number,
        "unit": action.unit.code if action.unit is not None else None,
        "started_at": iso(action.started_at),
        "ended_at": iso(action.ended_at),
        "location": action.location,
        "kind": action.kind,
        "devices": [serial for serial, _ in devices],
        "devices_resolved": [serial for serial, source in devices if source == "assignment"],
        "officers": list(officers),
        "verdict": effective_verdict(action, now),
        "reasons": list(action.reasons or []),
        "recordings": [rid for rid, _ in links],
        "recordings_manual": [rid for rid, manual in links if manual],
        "coverage_computed_at": iso_or_none(action.coverage_computed_at),
        "pending_until": iso_or_none(action.pending_until),
    }
