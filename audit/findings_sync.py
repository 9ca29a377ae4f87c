"""Keeping automatic findings in step with their causes, called where the causes change (SPEC §13).

The linking writer calls :func:`follow_verdicts` after each batch it judged (incremental or full recompute):
one query per batch reads the findings of the batch's actions, whatever its size. The ingest and the fixity
check reach :func:`follow_recordings` through ``on_recordings_changed``; the ingest calls
:func:`follow_duplicate` for bytes seen again under another name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.findings import reconcile
from audit.findings_rules import (
    DUPLICATE_CONFLICT,
    FIXITY_FAILED,
    LATE_UPLOAD,
    RECORDING_KINDS,
    SEQUENCE_HOLE,
    VERDICT_KINDS,
    verdict_kinds,
)
from config.settings import Settings
from storage.basics import iso_or_none
from storage.models import Recording


class Judged(Protocol):
    """An action as the linking writer leaves it: its subject and its new verdict and reasons."""

    @property
    def subject(self) -> str: ...
    @property
    def verdict(self) -> str | None: ...
    @property
    def reasons(self) -> list[Any]: ...
    @property
    def unit_id(self) -> int | None: ...


def follow_verdicts(session: Session, settings: Settings, states: Iterable[Judged], now: datetime, actor: str) -> int:
    """Open, close or reopen the findings of these just-judged actions (one kind per reason code)."""
    causes: dict[str, set[str]] = {}
    units: dict[str, int | None] = {}
    for s in states:
        causes[s.subject] = verdict_kinds(s.verdict, s.reasons)
        units[s.subject] = s.unit_id
    return reconcile(session, causes, VERDICT_KINDS, now, actor, settings.finding_due_days, units=units)


def follow_recordings(
    session: Session, settings: Settings, recording_ids: Sequence[int], now: datetime, actor: str
) -> int:
    """Late uploads and failed fixity checks of these recordings, as findings on ``recording:<id>``."""
    if not recording_ids:
        return 0
    deadline = timedelta(hours=settings.upload_deadline_hours)
    causes: dict[str, set[str]] = {}
    details: dict[tuple[str, str], dict[str, Any]] = {}
    rows = session.execute(
        select(
            Recording.id, Recording.started_at, Recording.ended_at, Recording.received_at, Recording.fixity_ok
        ).where(Recording.id.in_(list(recording_ids)))
    )
    for rid, start, end, received, fixity_ok in rows:
        subject, kinds = f"recording:{rid}", set()
        last = end if end is not None else start
        if last is not None and received > last + deadline:
            kinds.add(LATE_UPLOAD)
            details[(subject, LATE_UPLOAD)] = {"hours_after_end": round((received - last).total_seconds() / 3600, 2)}
        if fixity_ok is False:
            kinds.add(FIXITY_FAILED)
        causes[subject] = kinds
    changed = reconcile(session, causes, RECORDING_KINDS, now, actor, settings.finding_due_days, details)
    return changed + follow_sequences(session, settings, recording_ids, now, actor)


def follow_sequences(
    session: Session, settings: Settings, recording_ids: Sequence[int], now: datetime, actor: str
) -> int:
    """A hole in a device's sequence numbers before a recording (in time order, as the missing report sees
    it) is a ``sequence_hole`` finding on that recording; the missing file docking closes it."""
    causes: dict[str, set[str]] = {}
    details: dict[tuple[str, str], dict[str, Any]] = {}
    columns = (Recording.id, Recording.device_id, Recording.started_at, Recording.sequence)
    for rid, device_id, start, seq in session.execute(
        select(*columns).where(
            Recording.id.in_(list(recording_ids)), Recording.sequence.is_not(None), Recording.started_at.is_not(None)
        )
    ):
        if device_id is None:
            continue
        same = (Recording.device_id == device_id, Recording.sequence.is_not(None), Recording.id != rid)
        before = session.execute(
            select(*columns)
            .where(*same, Recording.started_at <= start)
            .order_by(Recording.started_at.desc(), Recording.id.desc())
            .limit(1)
        ).first()
        after = session.execute(
            select(*columns)
            .where(*same, Recording.started_at >= start)
            .order_by(Recording.started_at, Recording.id)
            .limit(1)
        ).first()
        for prev, this in ((before, (rid, device_id, start, seq)), ((rid, device_id, start, seq), after)):
            if this is None:
                continue
            subject = f"recording:{this[0]}"
            causes[subject] = set()
            if prev is not None and this[3] > prev[3] + 1:
                causes[subject].add(SEQUENCE_HOLE)
                hole = {"from_sequence": prev[3] + 1, "to_sequence": this[3] - 1, "after_recording": prev[0]}
                details[(subject, SEQUENCE_HOLE)] = hole
    if not causes:
        return 0
    return reconcile(session, causes, {SEQUENCE_HOLE}, now, actor, settings.finding_due_days, details)


def follow_duplicate(
    session: Session,
    settings: Settings,
    rec: Recording,
    claimed_device: str | None,
    claimed_start_local: datetime | None,
    path: str,
    now: datetime,
    actor: str,
) -> bool:
    """Bytes seen again under a name claiming another device or start time: a ``duplicate_conflict`` finding
    on the stored recording (SPEC §4), never a silent merge. Returns whether the name conflicts."""
    stored_device = rec.device.serial if rec.device is not None else None
    claimed_start = None
    if claimed_start_local is not None:
        local = claimed_start_local if claimed_start_local.tzinfo else claimed_start_local.replace(tzinfo=settings.tz)
        claimed_start = local.astimezone(UTC)
    other_device = claimed_device is not None and claimed_device != stored_device
    other_start = (
        claimed_start is not None
        and rec.started_at is not None
        and abs((claimed_start - rec.started_at).total_seconds()) >= 1.0
    )
    if not (other_device or other_start):
        return False
    subject = f"recording:{rec.id}"
    details = {
        "path": path,
        "claimed_device": claimed_device,
        "claimed_start": iso_or_none(claimed_start),
        "stored_device": stored_device,
        "stored_start": iso_or_none(rec.started_at),
    }
    causes = {subject: {DUPLICATE_CONFLICT}}
    overrides = settings.finding_due_days
    reconcile(session, causes, {DUPLICATE_CONFLICT}, now, actor, overrides, {(subject, DUPLICATE_CONFLICT): details})
    return True
