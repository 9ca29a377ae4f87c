"""Writing what a batch of linking changed: a fixed number of bulk statements, whatever the batch size.

On PostgreSQL links and events go in with ``COPY`` and the new verdicts with one ``UPDATE`` per batch; on
SQLite with the driver's executemany (see :mod:`storage.bulk`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from audit.registry import among
from storage.bulk import delete_pairs, insert_rows, table_of, update_rows
from storage.events import append_events
from storage.models import Action, ActionDevice, ActionRecording

CHUNK = 500  # ids per IN (...) list: well under every backend's parameter limit
COVERAGE_COLUMNS = ("verdict", "reasons", "pending_until", "coverage_computed_at")


@dataclass
class Writes:
    """Everything a batch changes, applied at once and in this order by :func:`apply`."""

    device_deletes: list[tuple[int, int]] = field(default_factory=list)  # (action row id, device id)
    device_inserts: list[tuple[int, int, str]] = field(default_factory=list)  # (action, device, source)
    link_deletes: list[tuple[int, int]] = field(default_factory=list)  # (action, recording)
    link_inserts: list[tuple[int, int, bool, datetime]] = field(default_factory=list)  # (action, rec, manual, at)
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    updates: list[tuple[int, str, list[Any], datetime | None, datetime]] = field(default_factory=list)
    touched: list[int] = field(default_factory=list)  # coverage unchanged: only ``coverage_computed_at``
    computed_at: datetime | None = None


def apply(session: Session, writes: Writes, actor: str) -> None:
    """Write a batch's changes and keep Action objects already loaded in the session in step."""
    session.flush()  # what the ORM holds goes first: the statements below bypass it
    delete_pairs(session, table_of(ActionDevice), ("action_id", "device_id"), writes.device_deletes)
    insert_rows(session, table_of(ActionDevice), ("action_id", "device_id", "source"), writes.device_inserts)
    delete_pairs(session, table_of(ActionRecording), ("action_id", "recording_id"), writes.link_deletes)
    columns = ("action_id", "recording_id", "manual", "linked_at")
    insert_rows(session, table_of(ActionRecording), columns, writes.link_inserts)
    append_events(session, writes.events, actor)
    table = table_of(Action)
    update_rows(session, table, "id", COVERAGE_COLUMNS, writes.updates)
    touched = sorted(writes.touched)
    for start in range(0, len(touched), CHUNK):
        ids = touched[start : start + CHUNK]
        session.connection().execute(
            update(table).where(among(session, table.c.id, ids)).values(coverage_computed_at=writes.computed_at)
        )
    _sync_loaded(session, writes)


def _sync_loaded(session: Session, writes: Writes) -> None:
    # Bulk statements do not touch objects already in the session: give them the stored values.
    if not session.identity_map:
        return
    for action_id, *values in writes.updates:
        obj = session.identity_map.get(identity_key(Action, action_id))
        if obj is not None:
            for key, value in zip(COVERAGE_COLUMNS, values, strict=True):
                set_committed_value(obj, key, value)
    for action_id in writes.touched:
        obj = session.identity_map.get(identity_key(Action, action_id))
        if obj is not None:
            set_committed_value(obj, "coverage_computed_at", writes.computed_at)
