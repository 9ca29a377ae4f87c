"""The engine behind :mod:`bwc.audit.linking`: bring a batch of actions' devices, links and verdicts up to date.

A batch is read with a fixed number of queries and written with a fixed number of statements, whatever its
size, so that a full recompute of 100k actions does not turn into a million round trips; the incremental
path runs the same code on a batch of a few actions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from bwc.audit.coverage import ActionFacts, CoverageResult, Policy, evaluate
from bwc.audit.link_data import Assignment, DeviceInfo, RecRow, facts, overlapping_assignments
from bwc.storage.events import append_events
from bwc.storage.models import Action, ActionDevice, ActionOfficer, ActionRecording, Officer
from bwc.storage.types import utcnow

CHUNK = 500  # ids per IN (...) list: well under every backend's parameter limit


class Data(Protocol):
    def devices(self, ids: Iterable[int]) -> dict[int, DeviceInfo]: ...
    def assignments(self, officer_ids: Iterable[int]) -> dict[int, list[Assignment]]: ...
    def near(self, device_id: int, lo: datetime, hi: datetime) -> list[RecRow]: ...
    def recordings(self, ids: Iterable[int]) -> dict[int, RecRow]: ...


@dataclass
class State:
    """One action and the rows around it: devices (id → source), links (recording id → manual), officers."""

    id: int
    action_id: str
    started_at: datetime
    ended_at: datetime
    verdict: str | None
    reasons: list[Any]
    pending_until: datetime | None
    devices: dict[int, str] = field(default_factory=dict)
    links: dict[int, bool] = field(default_factory=dict)
    officers: dict[int, bool | None] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        return f"action:{self.action_id}"


@dataclass
class Writes:
    """Everything a batch changes, applied at once and in this order by :func:`apply`."""

    device_deletes: list[tuple[int, list[int]]] = field(default_factory=list)
    device_inserts: list[dict[str, Any]] = field(default_factory=list)
    link_deletes: list[tuple[int, list[int]]] = field(default_factory=list)
    link_inserts: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)  # coverage that changed
    touched: list[int] = field(default_factory=list)  # coverage unchanged: only ``coverage_computed_at``
    computed_at: datetime | None = None


def chunks(ids: Sequence[int], size: int = CHUNK) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def load_states(session: Session, action_ids: Sequence[int]) -> list[State]:
    """The actions and their devices, links and officers, in four queries per chunk of ids."""
    session.flush()
    run = session.connection().execute  # Core execution: these are plain rows, and many of them
    states: dict[int, State] = {}
    for ids in chunks(sorted(set(action_ids))):
        for aid, ext, start, end, verdict, reasons, pending_until in run(
            select(
                Action.id,
                Action.action_id,
                Action.started_at,
                Action.ended_at,
                Action.verdict,
                Action.reasons,
                Action.pending_until,
            )
            .where(Action.id.in_(ids))
            .order_by(Action.id)
        ):
            states[aid] = State(aid, ext, start, end, verdict, list(reasons or []), pending_until)
        for aid, did, source in run(
            select(ActionDevice.action_id, ActionDevice.device_id, ActionDevice.source).where(
                ActionDevice.action_id.in_(ids)
            )
        ):
            states[aid].devices[did] = source
        for aid, rid, manual in run(
            select(ActionRecording.action_id, ActionRecording.recording_id, ActionRecording.manual).where(
                ActionRecording.action_id.in_(ids)
            )
        ):
            states[aid].links[rid] = bool(manual)
        for aid, oid, certified in run(
            select(ActionOfficer.action_id, Officer.id, Officer.certified)
            .join(Officer, Officer.id == ActionOfficer.officer_id)
            .where(ActionOfficer.action_id.in_(ids))
        ):
            states[aid].officers[oid] = certified
    return list(states.values())


def resolve(data: Data, state: State, writes: Writes) -> None:
    """Refresh the devices resolved from officers' assignments overlapping the action; named ones stay."""
    by_officer = data.assignments(state.officers)
    resolved: set[int] = set()
    for officer_id in state.officers:
        resolved |= overlapping_assignments(by_officer.get(officer_id, ()), state.started_at, state.ended_at)
    stale = sorted(d for d, source in state.devices.items() if source == "assignment" and d not in resolved)
    new = sorted(d for d in resolved if d not in state.devices)
    if stale:
        writes.device_deletes.append((state.id, stale))
        for d in stale:
            del state.devices[d]
    for d in new:
        writes.device_inserts.append({"action_id": state.id, "device_id": d, "source": "assignment"})
        state.devices[d] = "assignment"


def relink(data: Data, policy: Policy, state: State, writes: Writes) -> None:
    """Automatic links = recordings of the action's devices overlapping the widened window; manual ones stay."""
    margin = timedelta(seconds=policy.link_margin_seconds)
    infos = data.devices(state.devices)
    wanted: set[int] = set()
    for device_id in state.devices:
        offset = timedelta(seconds=infos[device_id].offset if device_id in infos else 0.0)
        # true time = device clock + offset, so in device-clock terms the window moves back by the offset
        wanted.update(
            r.id for r in data.near(device_id, state.started_at - margin - offset, state.ended_at + margin - offset)
        )
    added = sorted(wanted - state.links.keys())
    removed = sorted(rid for rid, manual in state.links.items() if not manual and rid not in wanted)
    if removed:
        writes.link_deletes.append((state.id, removed))
    now = utcnow()
    for rid in added:
        writes.link_inserts.append({"action_id": state.id, "recording_id": rid, "manual": False, "linked_at": now})
    recs = data.recordings([*removed, *added])
    for kind, ids in (("link.removed", removed), ("link.added", added)):
        for rid in ids:
            details = {"recording": rid, "sha256": recs[rid].sha256, "manual": False}
            writes.events.append((kind, state.subject, details))
    for rid in removed:
        del state.links[rid]
    state.links.update((rid, False) for rid in added)


def action_facts(data: Data, state: State) -> ActionFacts:
    recs = data.recordings(state.links)
    linked = [recs[rid] for rid in sorted(state.links) if rid in recs]
    infos = data.devices({*state.devices, *(r.device_id for r in linked if r.device_id is not None)})
    return ActionFacts(
        action_id=state.action_id,
        started_at=state.started_at,
        ended_at=state.ended_at,
        devices=sorted(infos[d].serial for d in state.devices if d in infos),
        recordings=[facts(r, infos.get(r.device_id) if r.device_id is not None else None) for r in linked],
        officers_certified=list(state.officers.values()),
    )


def store(state: State, result: CoverageResult, now: datetime, writes: Writes) -> None:
    """Queue the new coverage; a ``coverage.changed`` event only when the verdict or the reasons changed."""
    writes.computed_at = now
    if state.verdict != result.verdict or state.reasons != result.reasons:
        details = {"from": state.verdict, "to": result.verdict, "reasons": result.reasons}
        writes.events.append(("coverage.changed", state.subject, details))
    elif state.pending_until == result.pending_until:
        writes.touched.append(state.id)
        return
    writes.updates.append(
        {
            "_id": state.id,
            "verdict": result.verdict,
            "reasons": result.reasons,
            "pending_until": result.pending_until,
            "coverage_computed_at": now,
        }
    )
    state.verdict, state.reasons, state.pending_until = result.verdict, result.reasons, result.pending_until


def apply(session: Session, writes: Writes, actor: str) -> None:
    """Write a batch's changes with a handful of statements and keep loaded Action objects in step."""
    for action_id, device_ids in writes.device_deletes:
        session.execute(
            delete(ActionDevice).where(ActionDevice.action_id == action_id, ActionDevice.device_id.in_(device_ids))
        )
    # Core statements on the tables: the ORM's bulk paths cost several times more per row
    if writes.device_inserts:
        session.execute(insert(ActionDevice.__table__), writes.device_inserts)
    for action_id, recording_ids in writes.link_deletes:
        session.execute(
            delete(ActionRecording).where(
                ActionRecording.action_id == action_id, ActionRecording.recording_id.in_(recording_ids)
            )
        )
    if writes.link_inserts:
        session.execute(insert(ActionRecording.__table__), writes.link_inserts)
    append_events(session, writes.events, actor)
    table = Action.__table__
    if writes.updates:
        stmt = update(table).where(table.c.id == bindparam("_id"))
        session.execute(stmt, writes.updates)
    for ids in chunks(writes.touched):
        session.execute(update(table).where(table.c.id.in_(ids)).values(coverage_computed_at=writes.computed_at))
    touched = [{"_id": i, "coverage_computed_at": writes.computed_at} for i in writes.touched]
    _sync_loaded(session, writes.updates + touched)


def _sync_loaded(session: Session, updates: list[dict[str, Any]]) -> None:
    # A bulk UPDATE does not touch objects already in the session: give them the stored values.
    for row in updates:
        obj = session.identity_map.get(identity_key(Action, row["_id"]))
        if obj is not None:
            for key, value in row.items():
                if key != "_id":
                    set_committed_value(obj, key, value)


def process(
    session: Session,
    data: Data,
    policy: Policy,
    action_ids: Sequence[int],
    now: datetime,
    actor: str,
    *,
    resolve_devices: bool,
    link: bool = True,
) -> dict[int, CoverageResult]:
    """Resolve (optionally), relink and recompute these actions; returns the results by action row id."""
    writes = Writes()
    results: dict[int, CoverageResult] = {}
    for state in load_states(session, action_ids):
        if resolve_devices:
            resolve(data, state, writes)
        if link:
            relink(data, policy, state, writes)
        result = evaluate(action_facts(data, state), policy, now)
        store(state, result, now, writes)
        results[state.id] = result
    apply(session, writes, actor)
    return results
