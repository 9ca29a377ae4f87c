"""Actions whose ``pending`` verdict ran out with nobody docking: re-judged, so their findings open (SPEC §13).

A pending verdict turns ``incomplete`` by the clock alone (``pending_until``); reads already show it so, but
the stored verdict, and so the findings, change only when the action is re-judged. ``bwc findings refresh``
(or a scheduler) calls :func:`judge_expired`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.coverage import PENDING
from audit.linking import on_actions_changed
from config.settings import Settings
from storage.models import Action


def judge_expired(session: Session, settings: Settings, now: datetime, actor: str) -> int:
    """Re-judge every action still ``pending`` past its ``pending_until``; returns how many."""
    ids = list(
        session.scalars(
            select(Action.id).where(
                Action.verdict == PENDING, Action.pending_until.is_not(None), Action.pending_until <= now
            )
        )
    )
    if ids:
        on_actions_changed(session, settings, ids, actor, now)
    return len(ids)
