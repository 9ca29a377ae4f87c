"""Keeping links and verdicts current as recordings and actions change (SPEC §6).

The ingest pipeline calls :func:`on_recordings_changed` in the same transaction that stores a recording, so
that a camera docking late updates every affected verdict without anyone asking. Nothing here commits: the
caller owns the transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.coverage import Policy
from audit.findings_sync import follow_recordings, follow_verdicts
from audit.linking.load import QueryData
from audit.linking.sync import chunks, load_states, process_states
from config.settings import Settings
from storage.basics import utcnow
from storage.models import Action, ActionDevice, ActionRecording, Device, Recording

log = logging.getLogger(__name__)

BATCH = 2000  # actions per pass: an import batch's worth, read and written in a fixed number of statements


def on_recordings_changed(session: Session, settings: Settings, recording_ids: Sequence[int], actor: str) -> None:
    """Link these recordings to the actions they belong to and recompute exactly those actions."""
    action_ids = _affected_actions(session, settings, recording_ids)
    data, policy = QueryData(session), Policy.from_settings(settings)
    now = utcnow()
    for batch in chunks(action_ids, BATCH):
        _judge(session, settings, data, policy, batch, now, actor, resolve_devices=False)
    follow_recordings(session, settings, recording_ids, now, actor)  # late uploads, failed fixity (SPEC §13)
    log.debug("coverage.recordings_changed recordings=%d actions=%d", len(recording_ids), len(action_ids))


def on_actions_changed(
    session: Session, settings: Settings, action_ids: Sequence[int], actor: str, now: datetime | None = None
) -> None:
    """Resolve devices, relink recordings and recompute coverage (as of ``now``) for these actions."""
    session.flush()
    data, policy = QueryData(session), Policy.from_settings(settings)
    when = now if now is not None else utcnow()
    for batch in chunks(sorted(set(action_ids)), BATCH):
        _judge(session, settings, data, policy, batch, when, actor, resolve_devices=True)


def _judge(
    session: Session,
    settings: Settings,
    data: QueryData,
    policy: Policy,
    batch: list[int],
    now: datetime,
    actor: str,
    *,
    resolve_devices: bool,
) -> None:
    # relink and recompute a batch, then bring its actions' findings in line with the new verdicts
    states = load_states(session, batch)
    process_states(session, data, policy, states, now, actor, resolve_devices=resolve_devices)
    follow_verdicts(session, settings, states, now, actor)


def _affected_actions(session: Session, settings: Settings, recording_ids: Sequence[int]) -> list[int]:
    # the actions a change to these recordings may touch: linked now, or on their device and time
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
