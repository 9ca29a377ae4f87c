"""``bwc run``'s housekeeping: the work that falls due by the clock alone (SPEC §11, §13).

Every ``housekeeping_seconds`` each replica:
- re-judges the actions whose ``pending`` verdict ran out with no camera docking
  (:func:`audit.findings_refresh.judge_expired`): nothing else changes, so without this their findings would
  open only when some unrelated change triggered a recompute;
- deletes expired or signed-out web sessions and viewings that are over
  (:func:`api.web_sessions.purge_expired`).

Each step runs in its own short transaction, so a failure of one (logged) neither rolls back nor holds up the
other, and the next turn tries again. Both steps are idempotent: replicas running them at once only repeat
work. Time comes in through ``clock`` and the wait through ``wait``, so tests drive a turn without sleeping.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from api.web_sessions import purge_expired
from audit.findings_refresh import judge_expired
from config.settings import Settings
from storage.basics import utcnow
from storage.db import transaction

log = logging.getLogger(__name__)

ACTOR = "housekeeping"


@dataclass(frozen=True)
class Turn:
    """What one turn did; None where its step failed (and was logged)."""

    rejudged: int | None
    sessions_purged: int | None
    viewings_purged: int | None


def housekeep_once(sessions: sessionmaker[Session], settings: Settings, now: datetime) -> Turn:
    """One turn: expired pending verdicts re-judged, then dead sessions and finished viewings deleted."""
    rejudged = purged_sessions = purged_viewings = None
    try:
        with transaction(sessions) as session:
            rejudged = judge_expired(session, settings, now, ACTOR)
    except Exception:  # a database that is away now may answer at the next turn; the log says why
        log.exception("housekeeping.judge_expired_failed")
    try:
        with transaction(sessions) as session:
            purged = purge_expired(session, now)
        purged_sessions, purged_viewings = purged.sessions, purged.viewings
    except Exception:
        log.exception("housekeeping.purge_failed")
    if rejudged or purged_sessions or purged_viewings:
        log.info(
            "housekeeping.turn rejudged=%s sessions_purged=%s viewings_purged=%s",
            rejudged,
            purged_sessions,
            purged_viewings,
        )
    return Turn(rejudged, purged_sessions, purged_viewings)


def housekeep_forever(
    sessions: sessionmaker[Session],
    settings: Settings,
    stop: threading.Event,
    wait: Callable[[float], bool] | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> None:
    """A turn at start and then every ``housekeeping_seconds`` until ``wait`` reports ``stop`` set."""
    wait = wait or stop.wait
    while True:
        housekeep_once(sessions, settings, clock())
        if wait(settings.housekeeping_seconds):
            return
