"""The engine behind :mod:`audit.linking`: bring a batch of actions' devices, links and verdicts up to date.

A batch is read with a fixed number of queries and written with a fixed number of statements, whatever its
size, so that a full recompute of 100k actions does not turn into a million round trips; the incremental
path runs the same code on a batch of a few actions.

Every link change is recorded (SPEC §9), but the automatic changes of one action in one pass share one
``links.changed`` event listing the recordings added and removed: a first full run over 100k actions makes
~500k links, and an event per link (hashing, inserting) cost as much as the links themselves. Links made or
removed by hand stay one ``link.added`` / ``link.removed`` event each.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from audit.coverage import ActionFacts, CoverageResult, Policy, evaluate
from audit.linking.load import Assignment, DeviceInfo, RecRow, Span, facts, overlapping_assignments
from audit.linking.write import CHUNK, Writes, apply
from audit.registry import among
from storage.basics import utcnow
from storage.models import Action, ActionDevice, ActionOfficer, ActionRecording, ManualUnlink, Officer

LINKS_CHANGED = "links.changed"


class Data(Protocol):
    def devices(self, ids: Iterable[int]) -> dict[int, DeviceInfo]: ...
    def assignments(self, officer_ids: Iterable[int]) -> dict[int, list[Assignment]]: ...
    def near(self, device_id: int, lo: datetime, hi: datetime) -> list[RecRow]: ...
    def recordings(self, ids: Iterable[int]) -> dict[int, RecRow]: ...
    def prefetch(self, spans: Sequence[Span], margin: timedelta) -> None: ...


@dataclass
class State:
    """One action and the rows around it: devices (id → source), links (recording id → manual), officers,
    and the recordings a reviewer unlinked by hand (never linked again automatically)."""

    id: int
    action_id: str
    started_at: datetime
    ended_at: datetime
    verdict: str | None
    reasons: list[Any]
    pending_until: datetime | None
    unit_id: int | None = None
    devices: dict[int, str] = field(default_factory=dict)
    links: dict[int, bool] = field(default_factory=dict)
    officers: dict[int, bool | None] = field(default_factory=dict)
    unlinked: set[int] = field(default_factory=set)

    @property
    def subject(self) -> str:
        return f"action:{self.action_id}"


def chunks(ids: Sequence[int], size: int = CHUNK) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def load_states(session: Session, action_ids: Sequence[int]) -> list[State]:
    """The actions and their devices, links, officers and manual unlinks, in five queries per chunk of ids.

    Ids that form one unbroken run (the actions an import batch has just created) are read as a range: a
    statement of the same shape every time, where a list of 500 ids is rendered, converted and sent anew.
    """
    session.flush()
    states: dict[int, State] = {}
    ids = sorted(set(action_ids))
    if ids and ids[-1] - ids[0] + 1 == len(ids):
        first, last = ids[0], ids[-1]
        _load(session, states, lambda column: column.between(first, last))
        return list(states.values())
    for chunk in chunks(ids):
        _load(session, states, _among(session, chunk))
    return list(states.values())


def load_span(session: Session, first: int, last: int) -> list[State]:
    """Every action with ``first <= id <= last``, in five range queries (a full recompute walks the ids)."""
    session.flush()
    states: dict[int, State] = {}
    _load(session, states, lambda column: column.between(first, last))
    return list(states.values())


def _among(session: Session, ids: list[int]) -> Callable[[Any], ColumnElement[bool]]:
    return lambda column: among(session, column, ids)


def _load(session: Session, states: dict[int, State], where: Callable[[Any], ColumnElement[bool]]) -> None:
    run = session.connection().execute  # Core execution: these are plain rows, and many of them
    for aid, ext, start, end, verdict, reasons, pending_until, unit_id in run(
        select(
            Action.id,
            Action.action_id,
            Action.started_at,
            Action.ended_at,
            Action.verdict,
            Action.reasons,
            Action.pending_until,
            Action.unit_id,
        )
        .where(where(Action.id))
        .order_by(Action.id)
    ):
        states[aid] = State(aid, ext, start, end, verdict, list(reasons or []), pending_until, unit_id)
    for aid, did, source in run(
        select(ActionDevice.action_id, ActionDevice.device_id, ActionDevice.source).where(where(ActionDevice.action_id))
    ):
        states[aid].devices[did] = source
    for aid, rid, manual in run(
        select(ActionRecording.action_id, ActionRecording.recording_id, ActionRecording.manual).where(
            where(ActionRecording.action_id)
        )
    ):
        states[aid].links[rid] = bool(manual)
    for aid, oid, certified in run(
        select(ActionOfficer.action_id, Officer.id, Officer.certified)
        .join(Officer, Officer.id == ActionOfficer.officer_id)
        .where(where(ActionOfficer.action_id))
    ):
        states[aid].officers[oid] = certified
    for aid, rid in run(select(ManualUnlink.action_id, ManualUnlink.recording_id).where(where(ManualUnlink.action_id))):
        states[aid].unlinked.add(rid)


def resolve(data: Data, state: State, writes: Writes) -> None:
    """Refresh the devices resolved from officers' assignments overlapping the action; named ones stay."""
    by_officer = data.assignments(state.officers)
    resolved: set[int] = set()
    for officer_id in state.officers:
        resolved |= overlapping_assignments(by_officer.get(officer_id, ()), state.started_at, state.ended_at)
    stale = sorted(d for d, source in state.devices.items() if source == "assignment" and d not in resolved)
    new = sorted(d for d in resolved if d not in state.devices)
    for d in stale:
        writes.device_deletes.append((state.id, d))
        del state.devices[d]
    for d in new:
        writes.device_inserts.append((state.id, d, "assignment"))
        state.devices[d] = "assignment"


def relink(data: Data, policy: Policy, state: State, writes: Writes) -> None:
    """Automatic links = recordings of the action's devices overlapping the widened window, less those a
    reviewer unlinked by hand; manual links stay."""
    margin = timedelta(seconds=policy.link_margin_seconds)
    infos = data.devices(state.devices)
    wanted: set[int] = set()
    for device_id in state.devices:
        offset = timedelta(seconds=infos[device_id].offset if device_id in infos else 0.0)
        # true time = device clock + offset, so in device-clock terms the window moves back by the offset
        wanted.update(
            r.id for r in data.near(device_id, state.started_at - margin - offset, state.ended_at + margin - offset)
        )
    wanted -= state.unlinked
    added = sorted(wanted - state.links.keys())
    removed = sorted(rid for rid, manual in state.links.items() if not manual and rid not in wanted)
    if not added and not removed:
        return
    writes.link_deletes.extend((state.id, rid) for rid in removed)
    now = utcnow()
    writes.link_inserts.extend((state.id, rid, False, now) for rid in added)
    writes.events.append(
        (LINKS_CHANGED, state.subject, links_changed(data.recordings([*removed, *added]), added, removed))
    )
    for rid in removed:
        del state.links[rid]
    state.links.update((rid, False) for rid in added)


def links_changed(recs: Mapping[int, RecRow], added: Sequence[int], removed: Sequence[int]) -> dict[str, Any]:
    """One event's details for all the automatic link changes of one action in one pass (SPEC §9)."""
    return {
        "added": [{"recording": rid, "sha256": recs[rid].sha256} for rid in added],
        "removed": [{"recording": rid, "sha256": recs[rid].sha256} for rid in removed],
        "manual": False,
    }


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
    writes.updates.append((state.id, result.verdict, result.reasons, result.pending_until, now))
    state.verdict, state.reasons, state.pending_until = result.verdict, result.reasons, result.pending_until


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
    states = load_states(session, action_ids)
    return process_states(session, data, policy, states, now, actor, resolve_devices=resolve_devices, link=link)


def process_states(
    session: Session,
    data: Data,
    policy: Policy,
    states: Iterable[State],
    now: datetime,
    actor: str,
    *,
    resolve_devices: bool,
    link: bool = True,
) -> dict[int, CoverageResult]:
    """:func:`process` for states already loaded."""
    states = list(states)
    data.prefetch(states, timedelta(seconds=policy.link_margin_seconds))
    writes = Writes()
    results: dict[int, CoverageResult] = {}
    for state in states:
        if resolve_devices:
            resolve(data, state, writes)
        if link:
            relink(data, policy, state, writes)
        result = evaluate(action_facts(data, state), policy, now)
        store(state, result, now, writes)
        results[state.id] = result
    apply(session, writes, actor)
    return results
