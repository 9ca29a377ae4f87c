"""A recording's own audit trail (SPEC §11): who read it and when, its ingest, fixity checks, holds and exports."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.basics import iso
from storage.models import AuditEvent, Recording

LIMIT = 200


def recording_trail(session: Session, recordings: Sequence[Recording], limit: int = LIMIT) -> list[dict[str, Any]]:
    """The latest events about these recordings, newest first (ingest names a recording by digest, reads by id)."""
    if not recordings:
        return []
    by_subject: dict[str, int] = {}
    for rec in recordings:
        by_subject[f"recording:{rec.id}"] = rec.id
        by_subject[f"recording:{rec.sha256}"] = rec.id
    query = (
        select(AuditEvent).where(AuditEvent.subject.in_(list(by_subject))).order_by(AuditEvent.seq.desc()).limit(limit)
    )
    return [
        {
            "seq": ev.seq,
            "at": iso(ev.at),
            "actor": ev.actor,
            "kind": ev.kind,
            "recording": by_subject[ev.subject],
            "details": json.loads(ev.details),
        }
        for ev in session.scalars(query)
    ]
