"""The coverage policy in force, recorded in the audit log; a change recomputes every verdict (SPEC §6, §9).

The policy lives in settings (``min_devices``, ``max_gap_seconds``, ``require_audio``, ``upload_grace_hours``,
``link_margin_seconds``). Whoever starts the service (``bwc init``, ``bwc run``) or asks for a recompute
compares it with the last ``policy.changed`` event: a verdict reached under another rule would be stale.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from audit.coverage import Policy
from audit.linking import recompute_all
from config.settings import Settings
from storage.events import append_event, lock_event_log
from storage.models import Action, AuditEvent

log = logging.getLogger(__name__)

POLICY_CHANGED = "policy.changed"
SUBJECT = "policy:coverage"


def policy_values(settings: Settings) -> dict[str, Any]:
    """The effective coverage policy as plain values, as an event records it."""
    return dataclasses.asdict(Policy.from_settings(settings))


def recorded_policy(session: Session) -> dict[str, Any] | None:
    """The policy of the last ``policy.changed`` event, or None when none was recorded yet."""
    details = session.scalar(
        select(AuditEvent.details).where(AuditEvent.kind == POLICY_CHANGED).order_by(AuditEvent.seq.desc()).limit(1)
    )
    if details is None:
        return None
    recorded: dict[str, Any] = json.loads(details)["to"]
    return recorded


def record_policy_change(session: Session, settings: Settings, actor: str) -> bool:
    """Append ``policy.changed`` {from, to} when the policy differs from the recorded one; returns whether it did.

    Nothing is recorded before the first action exists: there is no verdict yet that a policy decided.
    """
    lock_event_log(session)  # two replicas starting at once record one change, not two
    current, last = policy_values(settings), recorded_policy(session)
    if last == current:
        return False
    if last is None and not session.scalar(select(exists().where(Action.id.is_not(None)))):
        return False
    append_event(session, POLICY_CHANGED, SUBJECT, {"from": last, "to": current}, actor)
    log.info("coverage.policy_changed from=%s to=%s", last, current)
    return True


def ensure_policy_current(
    session: Session,
    settings: Settings,
    now: datetime,
    actor: str,
    progress: Callable[[int], None] | None = None,
) -> bool:
    """Record a changed policy and recompute every action under it; returns whether the policy had changed."""
    if not record_policy_change(session, settings, actor):
        return False
    recompute_all(session, settings, now, actor, progress)
    return True
