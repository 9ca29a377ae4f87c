"""A batch of parsed actions written with a fixed number of statements, whatever its size (SPEC §6).

One query per kind finds or creates the batch's units, officers and devices; three read its existing actions
with their officers and named devices; then new actions go in with ``COPY`` (PostgreSQL) or executemany,
changed ones with one ``UPDATE``, their officer and device rows are inserted and deleted in bulk, and the
events are written in bulk. Each row gets the outcome and the event :class:`audit.action_rows.ActionWriter`
would give it: that per-row path is what a batch the database refuses falls back to.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from audit.action_rows import ParsedAction, described
from audit.registry import Registry, among
from storage.basics import utcnow
from storage.bulk import delete_pairs, insert_rows, table_of, update_rows
from storage.events import append_events
from storage.models import Action, ActionDevice, ActionOfficer, Device, Officer, Unit

FIELDS = ("case_number", "unit_id", "started_at", "ended_at", "location", "kind")
NEW_COLUMNS = ("action_id", *FIELDS, "created_at", "updated_at", "reasons")
CHUNK = 500  # ids per IN (...) list
Event = tuple[str, str, dict[str, Any]]


@dataclass
class Stored:
    """An action as the database holds it, with its officers and devices (named, and resolved by assignment)."""

    id: int
    fields: dict[str, Any]
    officers: set[int] = field(default_factory=set)
    named: set[int] = field(default_factory=set)
    resolved: set[int] = field(default_factory=set)


@dataclass
class _Wanted:
    parsed: ParsedAction
    fields: dict[str, Any]
    officers: list[int]
    devices: list[int]


@dataclass
class _Writes:
    new: list[_Wanted] = field(default_factory=list)
    updates: list[tuple[Any, ...]] = field(default_factory=list)
    officer_deletes: list[tuple[int, int]] = field(default_factory=list)
    officer_inserts: list[tuple[int, int]] = field(default_factory=list)
    device_deletes: list[tuple[int, int]] = field(default_factory=list)
    device_inserts: list[tuple[int, int, str]] = field(default_factory=list)
    device_renamed: list[tuple[int, int]] = field(default_factory=list)  # resolved by assignment → named


@dataclass(frozen=True)
class BatchResult:
    """Per row (in order) ``created`` | ``updated`` | ``unchanged``; the row ids of the actions that changed."""

    outcomes: list[str]
    changed: list[int]


def write_batch(reg: Registry, rows: Sequence[ParsedAction]) -> BatchResult:
    """Create or update these actions (distinct ``action_id`` values) and write their events; flushes only."""
    session = reg.session
    wanted = _resolve(reg, rows)
    stored = load_stored(session, [p.action_id for p in rows])
    now = utcnow()
    writes = _Writes()
    outcomes: list[str] = []
    events: list[Event | Stored] = []  # a Stored stands for its update's event, described once all are known
    changed_ids: list[int] = []
    updated: list[tuple[Stored, _Wanted]] = []
    for want in wanted:
        old = stored.get(want.parsed.action_id)
        if old is None:
            writes.new.append(want)
            outcomes.append("created")
            events.append(("action.created", f"action:{want.parsed.action_id}", described(want.parsed)))
        elif _plan_update(old, want, now, writes):
            outcomes.append("updated")
            updated.append((old, want))
            events.append(old)
            changed_ids.append(old.id)
        else:
            outcomes.append("unchanged")
    changed_ids += _insert_new(session, writes.new, now)
    _apply(session, writes)
    details = _update_details(session, updated)
    append_events(session, [e if isinstance(e, tuple) else details[e.id] for e in events], actor=reg.actor)
    return BatchResult(outcomes, changed_ids)


def _resolve(reg: Registry, rows: Sequence[ParsedAction]) -> list[_Wanted]:
    units = reg.ids("unit", [p.unit for p in rows if p.unit is not None])
    officers = reg.ids("officer", [code for p in rows for code in p.officers])
    devices = reg.ids("device", [serial for p in rows for serial in p.devices])
    return [
        _Wanted(
            p,
            {
                "case_number": p.case_number,
                "unit_id": units[p.unit] if p.unit is not None else None,
                "started_at": p.started_at,
                "ended_at": p.ended_at,
                "location": p.location,
                "kind": p.kind,
            },
            [officers[code] for code in p.officers],
            [devices[serial] for serial in p.devices],
        )
        for p in rows
    ]


def load_stored(session: Session, action_ids: Sequence[str]) -> dict[str, Stored]:
    """The stored actions among ``action_ids`` (external ids), with their officers and devices."""
    found: dict[str, Stored] = {}
    columns = [getattr(Action, name) for name in FIELDS]
    for chunk in _chunks(action_ids):
        for ext, pk, *values in session.connection().execute(
            select(Action.action_id, Action.id, *columns).where(among(session, Action.action_id, chunk))
        ):
            found[ext] = Stored(pk, dict(zip(FIELDS, values, strict=True)))
    by_id = {s.id: s for s in found.values()}
    for chunk in _chunks(list(by_id)):
        officer_rows = select(ActionOfficer.action_id, ActionOfficer.officer_id)
        for aid, oid in session.connection().execute(
            officer_rows.where(among(session, ActionOfficer.action_id, chunk))
        ):
            by_id[aid].officers.add(oid)
        device_rows = select(ActionDevice.action_id, ActionDevice.device_id, ActionDevice.source)
        for aid, did, source in session.connection().execute(
            device_rows.where(among(session, ActionDevice.action_id, chunk))
        ):
            (by_id[aid].named if source == "named" else by_id[aid].resolved).add(did)
    return found


def _plan_update(old: Stored, want: _Wanted, now: datetime, writes: _Writes) -> bool:
    """Queue what changes between the stored action and the row; False when nothing does."""
    fields_changed = any(old.fields[name] != want.fields[name] for name in FIELDS)
    officers, devices = set(want.officers), set(want.devices)
    if not fields_changed and officers == old.officers and devices == old.named:
        return False
    writes.updates.append((old.id, *(want.fields[name] for name in FIELDS), now))
    writes.officer_deletes += [(old.id, oid) for oid in sorted(old.officers - officers)]
    writes.officer_inserts += [(old.id, oid) for oid in want.officers if oid not in old.officers]
    writes.device_deletes += [(old.id, did) for did in sorted(old.named - devices)]
    for did in want.devices:
        if did in old.named:
            continue
        if did in old.resolved:
            writes.device_renamed.append((old.id, did))
        else:
            writes.device_inserts.append((old.id, did, "named"))
    return True


def _insert_new(session: Session, new: list[_Wanted], now: datetime) -> list[int]:
    """Insert the new actions with their officers and named devices; returns their row ids."""
    if not new:
        return []
    # COPY hands a JSON column's text to PostgreSQL as it is; the other paths serialize the list themselves
    empty_reasons: Any = "[]" if session.get_bind().dialect.name == "postgresql" else []
    rows = [(w.parsed.action_id, *(w.fields[name] for name in FIELDS), now, now, empty_reasons) for w in new]
    insert_rows(session, table_of(Action), NEW_COLUMNS, rows)
    ids: dict[str, int] = {}
    for chunk in _chunks([w.parsed.action_id for w in new]):
        ids.update(
            session.connection()
            .execute(select(Action.action_id, Action.id).where(among(session, Action.action_id, chunk)))
            .tuples()
            .all()
        )
    officer_rows = [(ids[w.parsed.action_id], oid) for w in new for oid in w.officers]
    insert_rows(session, table_of(ActionOfficer), ("action_id", "officer_id"), officer_rows)
    device_rows = [(ids[w.parsed.action_id], did, "named") for w in new for did in w.devices]
    insert_rows(session, table_of(ActionDevice), ("action_id", "device_id", "source"), device_rows)
    return [ids[w.parsed.action_id] for w in new]


def _apply(session: Session, writes: _Writes) -> None:
    update_rows(session, table_of(Action), "id", (*FIELDS, "updated_at"), writes.updates)
    delete_pairs(session, table_of(ActionOfficer), ("action_id", "officer_id"), writes.officer_deletes)
    insert_rows(session, table_of(ActionOfficer), ("action_id", "officer_id"), writes.officer_inserts)
    delete_pairs(session, table_of(ActionDevice), ("action_id", "device_id"), writes.device_deletes)
    insert_rows(session, table_of(ActionDevice), ("action_id", "device_id", "source"), writes.device_inserts)
    if writes.device_renamed:
        table = table_of(ActionDevice)
        stmt = (
            update(table)
            .where(table.c.action_id == bindparam("_a"), table.c.device_id == bindparam("_d"))
            .values(source="named")
        )
        session.connection().execute(stmt, [{"_a": a, "_d": d} for a, d in writes.device_renamed])


def _update_details(session: Session, updated: list[tuple[Stored, _Wanted]]) -> dict[int, Event]:
    """``action.updated`` events as :class:`ActionWriter` writes them: each changed field, from → to."""
    unit_codes = _codes(session, Unit.id, Unit.code, {o.fields["unit_id"] for o, _ in updated})
    officer_codes = _codes(session, Officer.id, Officer.code, {i for o, _ in updated for i in o.officers})
    serials = _codes(session, Device.id, Device.serial, {i for o, _ in updated for i in o.named})
    result: dict[int, Event] = {}
    for old, want in updated:
        changes: dict[str, Any] = {}
        for name in FIELDS:
            before, after = old.fields[name], want.fields[name]
            if before == after:
                continue
            if name == "unit_id":
                changes["unit"] = {"from": unit_codes.get(before), "to": want.parsed.unit}
            else:
                changes[name] = {"from": before, "to": after}
        if old.officers != set(want.officers):
            was = sorted(officer_codes[i] for i in old.officers)
            changes["officers"] = {"from": was, "to": sorted(want.parsed.officers)}
        if old.named != set(want.devices):
            changes["devices"] = {"from": sorted(serials[i] for i in old.named), "to": sorted(want.parsed.devices)}
        result[old.id] = ("action.updated", f"action:{want.parsed.action_id}", {"changes": changes})
    return result


def _codes(session: Session, id_column: Any, code_column: Any, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = sorted(i for i in ids if i is not None)
    found: dict[int, str] = {}
    for chunk in _chunks(wanted):
        found.update(
            session.connection()
            .execute(select(id_column, code_column).where(among(session, id_column, chunk)))
            .tuples()
            .all()
        )
    return found


def _chunks(items: Sequence[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(items), CHUNK):
        yield list(items[start : start + CHUNK])
