"""The coverage policy in force, recorded in the audit log; a change recomputes every verdict (SPEC §6, §9).

The policy lives in settings (``min_devices``, ``max_gap_seconds``, ``require_audio``, ``upload_grace_hours``,
``link_margin_seconds``). Whoever starts the service (``bwc init``, ``bwc run``) or asks for a recompute
compares it with the last ``policy.changed`` event: a verdict reached under another rule would be stale.
The recompute that follows commits batch by batch; a ``policy.applied`` event after its last batch says the
change reached every action, so a run interrupted half-way (no ``policy.applied`` after the last change) is
finished by the next ``bwc init`` / ``bwc run`` / ``bwc coverage recompute``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, sessionmaker

from audit.coverage import Policy
from audit.linking import Recomputed, recompute_all
from config.settings import Settings
from storage.db import transaction
from storage.events import append_event, lock_event_log
from storage.models import Action, AuditEvent

log = logging.getLogger(__name__)

POLICY_CHANGED = "policy.changed"
POLICY_APPLIED = "policy.applied"
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


def recompute_due(session: Session) -> bool:
    """True when the last recorded policy change has not reached every action (its recompute did not finish)."""
    changed = session.scalar(select(func.max(AuditEvent.seq)).where(AuditEvent.kind == POLICY_CHANGED))
    if changed is None:
        return False
    applied = session.scalar(select(func.max(AuditEvent.seq)).where(AuditEvent.kind == POLICY_APPLIED))
    return applied is None or applied < changed


@dataclass(frozen=True)
class PolicyRun:
    """What :func:`apply_policy` did: whether the policy had changed, whether it resumed an unfinished
    recompute, and the recompute (None when none was needed)."""

    changed: bool
    resumed: bool
    recomputed: Recomputed | None


def apply_policy(
    sessions: sessionmaker[Session],
    settings: Settings,
    now: datetime,
    actor: str,
    progress: Callable[[int], None] | None = None,
    *,
    force: bool = False,
) -> PolicyRun:
    """Record a changed policy, recompute every action under it (or when ``force``), then record it applied."""
    with transaction(sessions) as session:
        changed = record_policy_change(session, settings, actor)
        due = changed or recompute_due(session)
    if not (due or force):
        return PolicyRun(False, False, None)
    result = recompute_all(sessions, settings, now, actor, progress)
    if due:
        with transaction(sessions) as session:
            lock_event_log(session)
            # another replica may have recorded yet another policy meanwhile: that one is not applied yet
            if recompute_due(session) and recorded_policy(session) == policy_values(settings):
                details = {"policy": policy_values(settings), "actions": result.actions}
                append_event(session, POLICY_APPLIED, SUBJECT, details, actor)
    return PolicyRun(changed, due and not changed, result)
