"""Keeping automatic findings in step with their causes, called where the causes change (SPEC §13).

The linking writer calls :func:`follow_verdicts` after each batch it judged (incremental or full recompute):
one query per batch reads the findings of the batch's actions, whatever its size. The ingest and the fixity
check reach :func:`follow_recordings` through ``on_recordings_changed``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.findings import reconcile
from audit.findings_rules import FIXITY_FAILED, LATE_UPLOAD, RECORDING_KINDS, VERDICT_KINDS, verdict_kinds
from config.settings import Settings
from storage.models import Recording


class Judged(Protocol):
    """An action as the linking writer leaves it: its subject and its new verdict and reasons."""

    @property
    def subject(self) -> str: ...
    @property
    def verdict(self) -> str | None: ...
    @property
    def reasons(self) -> list[Any]: ...


def follow_verdicts(session: Session, settings: Settings, states: Iterable[Judged], now: datetime, actor: str) -> int:
    """Open, close or reopen the findings of these just-judged actions (one kind per reason code)."""
    causes = {s.subject: verdict_kinds(s.verdict, s.reasons) for s in states}
    return reconcile(session, causes, VERDICT_KINDS, now, actor, settings.finding_due_days)


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
    return reconcile(session, causes, RECORDING_KINDS, now, actor, settings.finding_due_days, details)
