"""Legal holds on cases (SPEC §5): every recording of a held case, now and later linked, is kept until release.

Decisions:
- The database is the record (``case_holds``, ``recordings.legal_hold``); the store's own hold (S3 Object Lock
  legal hold, also on the recording's sidecars) is set in the same transaction, before commit: should the commit
  fail, an object is held that the database does not call held, which errs on the side of keeping evidence.
- "Later linked" is done here, not where links are written: :func:`apply_case_holds` holds every recording linked
  to a held case that is not held yet, and each entry point that links (ingest, action imports and edits, coverage
  recomputes) calls it after linking. It is idempotent, so any later call also repairs an earlier miss.
- Release lifts a recording's hold only when no other held case still claims it.
- Holding needs a case that exists (at least one action) and a reason: a typo must not look like a hold.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from config.errors import BadInput, Conflict, NotFound
from storage.basics import iso
from storage.events import append_event
from storage.models import Action, ActionRecording, CaseHold, Recording, Sidecar
from storage.objects import ObjectMissing, ObjectStore

log = logging.getLogger(__name__)


@dataclass
class HoldResult:
    """What a hold or release did, for the CLI and the API."""

    case_number: str
    held: bool
    recordings: list[int] = field(default_factory=list)  # whose hold changed
    missing_objects: list[str] = field(default_factory=list)
    store_enforced: bool = False

    def as_json(self) -> dict[str, Any]:
        note = (
            None
            if self.store_enforced
            else "this object store has no legal hold of its own: enforced in the database only"
        )
        return {
            "case_number": self.case_number,
            "legal_hold": self.held,
            "recordings": self.recordings,
            "missing_objects": self.missing_objects,
            "store_enforced": self.store_enforced,
            "note": note,
        }


def active_hold(session: Session, case_number: str) -> CaseHold | None:
    """The hold in force on a case, if any."""
    query = select(CaseHold).where(CaseHold.case_number == case_number, CaseHold.released_at.is_(None))
    return session.scalars(query).first()


def _reason(reason: str) -> str:
    reason = reason.strip()
    if not reason:
        raise BadInput("a hold or release needs a reason (--reason)", code="reason_required")
    return reason


def _case_recordings(session: Session, case_number: str) -> list[Recording]:
    query = (
        select(Recording)
        .join(ActionRecording, ActionRecording.recording_id == Recording.id)
        .join(Action, Action.id == ActionRecording.action_id)
        .where(Action.case_number == case_number)
        .order_by(Recording.id)
    )
    return list(session.scalars(query).unique())


def _set_store_holds(session: Session, store: ObjectStore, recordings: Iterable[Recording], on: bool) -> list[str]:
    """Set or lift the store's hold on recordings and their sidecars; returns the digests it could not find."""
    recs = list(recordings)
    digests = [r.sha256 for r in recs]
    if recs:
        sidecars = select(Sidecar.sha256).where(Sidecar.recording_id.in_([r.id for r in recs]))
        digests += list(session.scalars(sidecars))
    missing = []
    for sha256 in dict.fromkeys(digests):
        try:
            store.set_legal_hold(sha256, on)
        except ObjectMissing:
            # Held in the database all the same; the lost object is a fixity finding of its own.
            log.error("hold.object_missing sha256=%s on=%s", sha256, on)
            missing.append(sha256)
    return missing


def hold_case(
    session: Session, store: ObjectStore, case_number: str, reason: str, actor: str, now: datetime
) -> HoldResult:
    """Put a case on legal hold: every recording linked to it now, and (through apply_case_holds) later."""
    reason = _reason(reason)
    if session.scalar(select(exists().where(Action.case_number == case_number))) is not True:
        raise NotFound(f"no action has case number {case_number!r}", code="no_case")
    current = active_hold(session, case_number)
    if current is not None:
        raise Conflict(f"case {case_number} is on hold since {iso(current.held_at)}", code="already_held")
    session.add(CaseHold(case_number=case_number, reason=reason, held_at=now, held_by=actor))
    recs = [r for r in _case_recordings(session, case_number) if not r.legal_hold]
    for rec in recs:
        rec.legal_hold = True
    result = HoldResult(case_number, True, [r.id for r in recs], store_enforced=store.holds_in_store())
    result.missing_objects = _set_store_holds(session, store, recs, True)
    details = {"reason": reason, "recordings": result.recordings, "store_enforced": result.store_enforced}
    append_event(session, "case.held", f"case:{case_number}", details, actor=actor)
    return result


def release_case(
    session: Session, store: ObjectStore, case_number: str, reason: str, actor: str, now: datetime
) -> HoldResult:
    """Release a case's hold; a recording stays held while another held case claims it."""
    reason = _reason(reason)
    current = active_hold(session, case_number)
    if current is None:
        raise Conflict(f"case {case_number} is not on hold", code="not_held")
    current.released_at, current.released_by, current.release_reason = now, actor, reason
    session.flush()
    still_held = set(_held_recording_ids(session))
    recs = [r for r in _case_recordings(session, case_number) if r.legal_hold and r.id not in still_held]
    for rec in recs:
        rec.legal_hold = False
    result = HoldResult(case_number, False, [r.id for r in recs], store_enforced=store.holds_in_store())
    result.missing_objects = _set_store_holds(session, store, recs, False)
    details = {"reason": reason, "recordings": result.recordings, "held_since": iso(current.held_at)}
    append_event(session, "case.released", f"case:{case_number}", details, actor=actor)
    return result


def _held_recording_ids(session: Session, among: Sequence[int] | None = None) -> list[int]:
    """Recordings linked to an action of a case on hold."""
    query = (
        select(ActionRecording.recording_id)
        .join(Action, Action.id == ActionRecording.action_id)
        .join(CaseHold, CaseHold.case_number == Action.case_number)
        .where(CaseHold.released_at.is_(None))
    )
    if among is not None:
        query = query.where(ActionRecording.recording_id.in_(list(among)))
    return sorted(set(session.scalars(query)))


def apply_case_holds(
    session: Session, store: ObjectStore, actor: str, recording_ids: Sequence[int] | None = None
) -> list[int]:
    """Hold every recording (of ``recording_ids``, or all) newly linked to a held case; call after linking."""
    session.flush()
    if session.scalar(select(exists().where(CaseHold.released_at.is_(None)))) is not True:
        return []  # the common case: no hold in force, one cheap query
    ids = _held_recording_ids(session, recording_ids)
    recs = [r for r in session.scalars(select(Recording).where(Recording.id.in_(ids))).unique() if not r.legal_hold]
    if not recs:
        return []
    for rec in recs:
        rec.legal_hold = True
    _set_store_holds(session, store, recs, True)
    for rec in recs:
        append_event(session, "recording.held", f"recording:{rec.id}", {"sha256": rec.sha256}, actor=actor)
    log.info("hold.applied recordings=%d", len(recs))
    return [r.id for r in recs]


def hold_sidecar(session: Session, store: ObjectStore, recording_id: int, sha256: str) -> bool:
    """A sidecar joining a held recording is held in the store too; True when it was."""
    if session.scalar(select(Recording.legal_hold).where(Recording.id == recording_id)) is not True:
        return False
    store.set_legal_hold(sha256, True)
    return True


def case_hold_json(session: Session, case_number: str) -> dict[str, Any] | None:
    """The hold in force on a case, for its pages and JSON; None when it is not held."""
    current = active_hold(session, case_number)
    if current is None:
        return None
    return {"reason": current.reason, "held_at": iso(current.held_at), "held_by": current.held_by}
