"""Objects in the store that no recording or sidecar names (SPEC §5): found, listed, and with ``apply``
recorded in the audit log — never deleted, since the store is write-once and only a person may judge them.

They come from crashes and from files that changed while being read (their partial prefix was stored, then
the commit was refused). Like warehouse's storage-reconcile task, the store's listing is walked in batches and
each batch is looked up in the database, so memory stays flat however many objects there are.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.events import append_events
from storage.models import AuditEvent, Recording, Sidecar
from storage.objects import ObjectInfo, ObjectStore, digest_of_key

EVENT_KIND = "storage.unreferenced_object"
BATCH = 500


@dataclass(frozen=True)
class Unreferenced:
    key: str
    sha256: str | None  # None: a key under sha256/ that is not a content address at all
    size: int
    recorded: bool  # already in the audit log (by an earlier --apply, or by this one)

    @property
    def subject(self) -> str:
        return f"object:{self.sha256}" if self.sha256 else f"object-key:{self.key}"

    def json(self) -> dict[str, Any]:
        return {"key": self.key, "sha256": self.sha256, "size": self.size, "recorded": self.recorded}


@dataclass(frozen=True)
class Reconciliation:
    checked: int
    unreferenced: list[Unreferenced]
    recorded_now: int
    applied: bool

    def json(self) -> dict[str, Any]:
        return {
            "objects_checked": self.checked,
            "unreferenced_count": len(self.unreferenced),
            "unreferenced_bytes": sum(u.size for u in self.unreferenced),
            "recorded_now": self.recorded_now,
            "applied": self.applied,
            "unreferenced": [u.json() for u in self.unreferenced],
        }


def reconcile(session: Session, store: ObjectStore, *, apply: bool, actor: str) -> Reconciliation:
    """List the store's unreferenced objects; with ``apply``, add an audit event for each not yet recorded."""
    checked, found = 0, []
    for batch in _batches(store.iter_objects()):
        checked += len(batch)
        found += _unreferenced(session, batch)
    new = [u for u in found if not u.recorded]
    if apply and new:
        events = [(EVENT_KIND, u.subject, {"key": u.key, "size": u.size}) for u in new]
        append_events(session, events, actor=actor)
        found = [Unreferenced(u.key, u.sha256, u.size, True) for u in found]
    return Reconciliation(checked, found, len(new) if apply else 0, apply)


def _batches(objects: Iterable[ObjectInfo]) -> Iterator[list[ObjectInfo]]:
    it = iter(objects)
    while batch := list(islice(it, BATCH)):
        yield batch


def _unreferenced(session: Session, batch: list[ObjectInfo]) -> list[Unreferenced]:
    digests = {info.key: digest_of_key(info.key) for info in batch}
    shas = [d for d in digests.values() if d is not None]
    named = set(session.scalars(select(Recording.sha256).where(Recording.sha256.in_(shas)))) if shas else set()
    if shas:
        named |= set(session.scalars(select(Sidecar.sha256).where(Sidecar.sha256.in_(shas))))
    orphans = [
        Unreferenced(info.key, digests[info.key], info.size, False) for info in batch if digests[info.key] not in named
    ]
    if not orphans:
        return orphans
    subjects = [o.subject for o in orphans]
    recorded = set(
        session.scalars(
            select(AuditEvent.subject).where(AuditEvent.kind == EVENT_KIND, AuditEvent.subject.in_(subjects))
        )
    )
    return [Unreferenced(o.key, o.sha256, o.size, o.subject in recorded) for o in orphans]
