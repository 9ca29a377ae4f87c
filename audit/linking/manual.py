"""A reviewer's links and unlinks by hand (SPEC §6): each audited, each kept through every recompute.

A manual link stays until unlinked by hand; a manual unlink is remembered (``manual_unlinks``) so that no
recompute links the recording to the action again, until someone links it by hand. Both are idempotent: the
same request twice changes nothing and records no second event. Nothing here commits.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.linking.incremental import on_actions_changed
from config.errors import Conflict, NotFound
from config.settings import Settings
from storage.basics import utcnow
from storage.events import append_event, lock_event_log
from storage.models import Action, ActionRecording, ManualUnlink, Recording
from storage.objects import ObjectStore


@dataclass(frozen=True)
class ManualChange:
    """The action after a manual link or unlink, and whether anything changed (False: it was so already)."""

    action: Action
    changed: bool


def link_by_hand(
    session: Session, settings: Settings, store: ObjectStore, action_id: str, recording_id: int, actor: str
) -> ManualChange:
    """Link a stored recording to an action by hand and re-judge the action; a manual link already there is kept."""
    action, recording = _find(session, action_id, recording_id)
    if store.head(recording.sha256) is None:
        raise Conflict(f"recording {recording_id}'s object is not in the store", code="recording_unreachable")
    lock_event_log(session)  # read the link state only once no other writer can change it
    link = session.get(ActionRecording, (action.id, recording.id))
    if link is not None and link.manual:
        return ManualChange(action, False)
    unlinked = session.get(ManualUnlink, (action.id, recording.id))
    if unlinked is not None:
        session.delete(unlinked)
    if link is None:
        session.add(ActionRecording(action_id=action.id, recording_id=recording.id, manual=True, linked_at=utcnow()))
    else:
        link.manual = True
    details = {"recording": recording.id, "sha256": recording.sha256, "manual": True, "was_linked": link is not None}
    append_event(session, "link.added", f"action:{action.action_id}", details, actor)
    on_actions_changed(session, settings, [action.id], actor)
    return ManualChange(action, True)


def unlink_by_hand(session: Session, settings: Settings, action_id: str, recording_id: int, actor: str) -> ManualChange:
    """Take a recording off an action by hand, for good, and re-judge the action."""
    action, recording = _find(session, action_id, recording_id)
    lock_event_log(session)
    unlinked = session.get(ManualUnlink, (action.id, recording.id))
    link = session.get(ActionRecording, (action.id, recording.id))
    if link is None:
        if unlinked is not None:
            return ManualChange(action, False)
        raise NotFound(f"recording {recording_id} is not linked to action {action_id!r}", code="not_linked")
    was_manual = link.manual
    session.delete(link)
    session.add(ManualUnlink(action_id=action.id, recording_id=recording.id, unlinked_at=utcnow(), actor=actor))
    details = {"recording": recording.id, "sha256": recording.sha256, "manual": True, "was_manual": was_manual}
    append_event(session, "link.removed", f"action:{action.action_id}", details, actor)
    on_actions_changed(session, settings, [action.id], actor)
    return ManualChange(action, True)


def _find(session: Session, action_id: str, recording_id: int) -> tuple[Action, Recording]:
    action = session.scalar(select(Action).where(Action.action_id == action_id))
    if action is None:
        raise NotFound(f"no action {action_id!r}", code="action_not_found")
    recording = session.get(Recording, recording_id)
    if recording is None:
        raise NotFound(f"no recording {recording_id}", code="recording_not_found")
    return action, recording
