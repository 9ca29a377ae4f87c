"""Linking recordings to enforcement actions and keeping coverage verdicts current (SPEC §6).

The ingest pipeline calls ``on_recordings_changed`` in the same transaction that stores a recording, so that
a camera docking late updates every affected verdict without anyone asking. Nothing here commits: the caller
owns the transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from audit.coverage import CoverageResult, Policy
from audit.link_data import BulkData, QueryData
from audit.link_sync import chunks, load_span, load_states, process, process_states, resolve
from audit.link_sync import relink as relink_state
from audit.link_write import Writes, apply
from config.errors import NotFound
from config.settings import Settings
from storage.events import SYSTEM_ACTOR, append_event
from storage.models import Action, ActionDevice, ActionOfficer, ActionRecording, Device, Recording
from storage.types import utcnow

log = logging.getLogger(__name__)

BATCH = 500


def resolve_devices(session: Session, action: Action) -> None:
    """Keep named devices; refresh devices resolved from the action's officers through assignments."""
    session.flush()
    data = QueryData(session)
    writes = Writes()
    for state in load_states(session, [action.id]):
        resolve(data, state, writes)
    apply(session, writes, SYSTEM_ACTOR)


def relink(session: Session, settings: Settings, action: Action, actor: str) -> None:
    """Link the recordings of the action's devices overlapping its widened window; keep manual links."""
    session.flush()
    data = QueryData(session)
    writes = Writes()
    for state in load_states(session, [action.id]):
        relink_state(data, Policy.from_settings(settings), state, writes)
    apply(session, writes, actor)


def recompute(session: Session, settings: Settings, action: Action, now: datetime, actor: str) -> CoverageResult:
    """Evaluate coverage over the current links and store it; an event only when verdict or reasons changed."""
    session.flush()
    policy = Policy.from_settings(settings)
    results = process(session, QueryData(session), policy, [action.id], now, actor, resolve_devices=False, link=False)
    return results[action.id]


def affected_actions(session: Session, settings: Settings, recording_ids: Sequence[int]) -> list[int]:
    """Ids of the actions a change to these recordings may touch: linked now, or on their device and time."""
    if not recording_ids:
        return []
    session.flush()
    ids = set(
        session.scalars(select(ActionRecording.action_id).where(ActionRecording.recording_id.in_(list(recording_ids))))
    )
    margin = timedelta(seconds=settings.link_margin_seconds)
    rows = session.execute(
        select(Recording.device_id, Recording.started_at, Recording.ended_at, Device.clock_offset_seconds)
        .join(Device, Device.id == Recording.device_id)
        .where(Recording.id.in_(list(recording_ids)), Recording.started_at.is_not(None))
    ).all()
    for device_id, start, end, offset in rows:
        shift = timedelta(seconds=float(offset or 0.0))
        end = end if end is not None else start
        ids.update(
            session.scalars(
                select(ActionDevice.action_id)
                .join(Action, Action.id == ActionDevice.action_id)
                .where(
                    ActionDevice.device_id == device_id,
                    Action.started_at <= end + shift + margin,
                    Action.ended_at >= start + shift - margin,
                )
            )
        )
    return sorted(ids)


def on_recordings_changed(session: Session, settings: Settings, recording_ids: Sequence[int], actor: str) -> None:
    """Link these recordings to the actions they belong to and recompute exactly those actions."""
    action_ids = affected_actions(session, settings, recording_ids)
    data, policy = QueryData(session), Policy.from_settings(settings)
    for batch in chunks(action_ids, BATCH):
        process(session, data, policy, batch, utcnow(), actor, resolve_devices=False)
    log.debug("coverage.recordings_changed recordings=%d actions=%d", len(recording_ids), len(action_ids))


def on_actions_changed(session: Session, settings: Settings, action_ids: Sequence[int], actor: str) -> None:
    """Resolve devices, relink recordings and recompute coverage for these actions."""
    session.flush()
    data, policy = QueryData(session), Policy.from_settings(settings)
    for batch in chunks(sorted(set(action_ids)), BATCH):
        process(session, data, policy, batch, utcnow(), actor, resolve_devices=True)


def actions_for_officers(session: Session, officer_ids: Sequence[int], start: datetime, end: datetime) -> list[int]:
    """Ids of actions with one of these officers overlapping [start, end] (for assignment changes)."""
    if not officer_ids:
        return []
    return sorted(
        set(
            session.scalars(
                select(ActionOfficer.action_id)
                .join(Action, Action.id == ActionOfficer.action_id)
                .where(
                    ActionOfficer.officer_id.in_(list(officer_ids)),
                    Action.started_at <= end,
                    Action.ended_at >= start,
                )
            )
        )
    )


def on_assignment_changed(
    session: Session, settings: Settings, officer_id: int, start: datetime, end: datetime | None, actor: str
) -> None:
    """An assignment of ``officer_id`` over [start, end] was added, changed or ended: update its actions."""
    session.flush()
    upper = end if end is not None else datetime.max.replace(tzinfo=start.tzinfo)
    on_actions_changed(session, settings, actions_for_officers(session, [officer_id], start, upper), actor)


def on_devices_changed(session: Session, settings: Settings, device_ids: Sequence[int], actor: str) -> None:
    """A device's clock offset changed: relink and recompute the actions it is on."""
    if not device_ids:
        return
    session.flush()
    ids = session.scalars(select(ActionDevice.action_id).where(ActionDevice.device_id.in_(list(device_ids))))
    on_actions_changed(session, settings, sorted(set(ids)), actor)


@dataclass(frozen=True)
class Recomputed:
    """What a full recompute did: actions processed, and how many of them got another verdict."""

    actions: int
    verdicts_changed: int


def recompute_all(
    session: Session,
    settings: Settings,
    now: datetime,
    actor: str,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Resolve, relink and recompute every action in batches; returns how many actions were processed."""
    return recompute_everything(session, settings, now, actor, progress).actions


def recompute_everything(
    session: Session,
    settings: Settings,
    now: datetime,
    actor: str,
    progress: Callable[[int], None] | None = None,
) -> Recomputed:
    """:func:`recompute_all`, counting the verdicts that changed."""
    session.flush()
    done = changed = 0
    with _big_page_cache(session):
        data, policy = BulkData(session), Policy.from_settings(settings)
        last_id = 0
        while True:
            query = select(Action.id).where(Action.id > last_id).order_by(Action.id).limit(BATCH)
            batch = list(session.scalars(query))
            if not batch:
                break
            # the batch is every action with an id in [first, last]: read them by range, not by a list of ids
            states = load_span(session, batch[0], batch[-1])
            before = {state.id: state.verdict for state in states}
            results = process_states(session, data, policy, states, now, actor, resolve_devices=True)
            changed += sum(1 for aid, result in results.items() if before[aid] != result.verdict)
            last_id = batch[-1]
            done += len(batch)
            if progress is not None:
                progress(len(batch))
    log.info("coverage.recompute_all actions=%d verdicts_changed=%d", done, changed)
    return Recomputed(done, changed)


@contextmanager
def _big_page_cache(session: Session) -> Iterator[None]:
    # SQLite's default 2 MiB page cache thrashes on a full recompute's random index inserts (links, events)
    # and makes it grow faster than linearly; give this connection 256 MiB while it runs.
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    previous = session.execute(text("PRAGMA cache_size")).scalar_one()
    session.execute(text("PRAGMA cache_size = -262144"))
    try:
        yield
    finally:
        session.execute(text(f"PRAGMA cache_size = {int(previous)}"))


def link_manually(session: Session, action: Action, recording: Recording, actor: str) -> None:
    """A reviewer's link: it survives every relink until unlinked by hand. Call ``recompute`` afterwards."""
    link = session.get(ActionRecording, (action.id, recording.id))
    if link is not None and link.manual:
        return
    if link is None:
        session.add(ActionRecording(action_id=action.id, recording_id=recording.id, manual=True, linked_at=utcnow()))
    else:
        link.manual = True
    details = {"recording": recording.id, "sha256": recording.sha256, "manual": True}
    append_event(session, "link.added", f"action:{action.action_id}", details, actor)
    session.flush()


def unlink_manually(session: Session, action: Action, recording: Recording, actor: str) -> None:
    """Remove a link by hand; an automatic one comes back on the next relink. Call ``recompute`` afterwards."""
    link = session.get(ActionRecording, (action.id, recording.id))
    if link is None:
        raise NotFound(f"recording {recording.id} is not linked to action {action.action_id}")
    session.delete(link)
    append_event(
        session,
        "link.removed",
        f"action:{action.action_id}",
        {"recording": recording.id, "sha256": recording.sha256, "manual": True},
        actor,
    )
    session.flush()


def effective_verdict(action: Action, now: datetime) -> str | None:
    """The stored verdict as of ``now``: a ``pending`` past ``pending_until`` reads as ``incomplete``."""
    if action.verdict == "pending" and action.pending_until is not None and now >= action.pending_until:
        return "incomplete"
    return action.verdict
