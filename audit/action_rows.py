"""One enforcement action from one CSV row: validate it, then create or update it (SPEC §6)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from audit.csv_rows import BadRow, check_length, parse_time, split_list
from audit.registry import Registry
from storage.basics import utcnow
from storage.events import append_event
from storage.models import Action, ActionDevice, ActionOfficer, Device, Officer, Unit


@dataclass(frozen=True)
class ParsedAction:
    action_id: str
    case_number: str | None
    unit: str | None
    started_at: datetime
    ended_at: datetime
    officers: tuple[str, ...]
    devices: tuple[str, ...]
    location: str | None
    kind: str | None


def parse_action(values: dict[str, str | None], tz: ZoneInfo) -> ParsedAction:
    """Check one row's values; an action must end after it starts (a zero-length window cannot be covered)."""
    action_id = values.get("action_id")
    if not action_id:
        raise BadRow("action_id: required")
    check_length(action_id, "action_id", 128)
    problems = [f"{name}: required" for name in ("started_at", "ended_at") if not values.get(name)]
    if problems:
        raise BadRow("; ".join(problems))
    started = parse_time(values["started_at"] or "", tz, "started_at")
    ended = parse_time(values["ended_at"] or "", tz, "ended_at")
    if ended <= started:
        raise BadRow(f"ended_at ({values['ended_at']}) must be after started_at ({values['started_at']})")
    officers = tuple(split_list(values.get("officers")))
    devices = tuple(split_list(values.get("devices")))
    for code in officers:
        check_length(code, "officers", 128)
    for serial in devices:
        check_length(serial, "devices", 128)
    return ParsedAction(
        action_id=action_id,
        case_number=check_length(values.get("case_number"), "case_number", 128),
        unit=check_length(values.get("unit"), "unit", 128),
        started_at=started,
        ended_at=ended,
        officers=officers,
        devices=devices,
        location=values.get("location"),
        kind=check_length(values.get("kind"), "kind", 128),
    )


class ActionWriter:
    """Creates or updates actions, their officers and their named devices; writes the audit events."""

    def __init__(self, reg: Registry) -> None:
        self.reg = reg
        self.session: Session = reg.session

    def upsert(self, parsed: ParsedAction) -> tuple[str, int]:
        """Returns (``created`` | ``updated`` | ``unchanged``, the action's database id)."""
        session = self.session
        action = session.scalar(select(Action).where(Action.action_id == parsed.action_id))
        unit = self.reg.unit(parsed.unit)
        officer_ids = [self.reg.officer(code).id for code in parsed.officers]
        device_ids = [self.reg.device(serial).id for serial in parsed.devices]
        fields = {
            "case_number": parsed.case_number,
            "unit_id": unit.id if unit is not None else None,
            "started_at": parsed.started_at,
            "ended_at": parsed.ended_at,
            "location": parsed.location,
            "kind": parsed.kind,
        }
        subject = f"action:{parsed.action_id}"
        if action is None:
            action = Action(action_id=parsed.action_id, reasons=[], **fields)
            session.add(action)
            session.flush()
            self._set_officers(action.id, officer_ids, [])
            self._set_devices(action.id, device_ids, [])
            append_event(session, "action.created", subject, described(parsed), actor=self.reg.actor)
            return "created", action.id

        changes: dict[str, Any] = {}
        old_unit = _code(session, Unit, action.unit_id)
        for name, new in fields.items():
            old = getattr(action, name)
            if old != new:
                if name == "unit_id":
                    changes["unit"] = {"from": old_unit, "to": parsed.unit}
                else:
                    changes[name] = {"from": old, "to": new}
                setattr(action, name, new)
        old_officers = list(
            session.scalars(select(ActionOfficer.officer_id).where(ActionOfficer.action_id == action.id))
        )
        mine = ActionDevice.action_id == action.id
        named = select(ActionDevice.device_id).where(mine, ActionDevice.source == "named")
        old_devices = list(session.scalars(named))
        if set(old_officers) != set(officer_ids):
            changes["officers"] = {"from": _codes(session, Officer, old_officers), "to": sorted(parsed.officers)}
            self._set_officers(action.id, officer_ids, old_officers)
        if set(old_devices) != set(device_ids):
            changes["devices"] = {"from": _codes(session, Device, old_devices), "to": sorted(parsed.devices)}
            self._set_devices(action.id, device_ids, old_devices)
        if not changes:
            return "unchanged", action.id
        action.updated_at = utcnow()
        session.flush()
        append_event(session, "action.updated", subject, {"changes": changes}, actor=self.reg.actor)
        return "updated", action.id

    def _set_officers(self, action_id: int, new: list[int], old: list[int]) -> None:
        gone = set(old) - set(new)
        if gone:
            self.session.execute(
                delete(ActionOfficer).where(ActionOfficer.action_id == action_id, ActionOfficer.officer_id.in_(gone))
            )
        self.session.add_all(ActionOfficer(action_id=action_id, officer_id=oid) for oid in new if oid not in old)
        self.session.flush()

    def _set_devices(self, action_id: int, new: list[int], old_named: list[int]) -> None:
        """Named devices only; a device also resolved through an assignment becomes named."""
        gone = set(old_named) - set(new)
        if gone:
            self.session.execute(
                delete(ActionDevice).where(
                    ActionDevice.action_id == action_id,
                    ActionDevice.device_id.in_(gone),
                    ActionDevice.source == "named",
                )
            )
        resolved = {
            link.device_id: link
            for link in self.session.scalars(
                select(ActionDevice).where(ActionDevice.action_id == action_id, ActionDevice.source != "named")
            )
        }
        for device_id in new:
            if device_id in old_named:
                continue
            if device_id in resolved:
                resolved[device_id].source = "named"
            else:
                self.session.add(ActionDevice(action_id=action_id, device_id=device_id, source="named"))
        self.session.flush()


def described(parsed: ParsedAction) -> dict[str, Any]:
    """An `action.created` event's details: the row as read (times in UTC)."""
    return {
        "case_number": parsed.case_number,
        "unit": parsed.unit,
        "started_at": parsed.started_at,
        "ended_at": parsed.ended_at,
        "officers": list(parsed.officers),
        "devices": list(parsed.devices),
        "location": parsed.location,
        "kind": parsed.kind,
    }


def _code(session: Session, model: type[Unit], row_id: int | None) -> str | None:
    return None if row_id is None else session.scalar(select(model.code).where(model.id == row_id))


def _codes(session: Session, model: type[Officer] | type[Device], ids: list[int]) -> list[str]:
    if not ids:
        return []
    column = Officer.code if model is Officer else Device.serial
    return sorted(session.scalars(select(column).where(model.id.in_(ids))))
