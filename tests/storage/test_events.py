"""Audit events: canonical bytes, gap-free sequence, and append-only at the ORM and database level."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from bwc.storage.db import transaction
from bwc.storage.events import AuditLogImmutable, append_event, canonical_json, leaf_bytes, leaf_hash
from bwc.storage.models import AuditEvent
from bwc.storage.runtime import Runtime


def test_canonical_json_is_stable_and_keeps_chinese() -> None:
    a = canonical_json({"b": 1, "a": "执法记录仪", "t": datetime(2024, 5, 1, 8, 0, tzinfo=UTC)})
    assert a == '{"a":"执法记录仪","b":1,"t":"2024-05-01T08:00:00.000000Z"}'


def test_leaf_hash_follows_rfc6962_prefix() -> None:
    data = leaf_bytes(1, datetime(2024, 1, 1, tzinfo=UTC), "system", "k", "s", "{}")
    import hashlib

    assert leaf_hash(data) == hashlib.sha256(b"\x00" + data).hexdigest()
    assert json.loads(data)["seq"] == 1


def test_sequence_is_gap_free_across_rollbacks(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as s:
        append_event(s, "test.one", "x:1")
    with pytest.raises(RuntimeError), transaction(runtime.sessions) as s:
        append_event(s, "test.rolled_back", "x:2")
        raise RuntimeError("abort")
    with transaction(runtime.sessions) as s:
        append_event(s, "test.two", "x:3", {"n": 3}, actor="token:alice")
    with runtime.sessions() as s:
        events = s.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [(e.seq, e.kind) for e in events] == [(1, "test.one"), (2, "test.two")]
    e = events[1]
    assert e.leaf_hash == leaf_hash(leaf_bytes(e.seq, e.at, e.actor, e.kind, e.subject, e.details))


def test_orm_refuses_to_change_an_event(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as s:
        append_event(s, "test.one", "x:1")
    with pytest.raises(AuditLogImmutable), transaction(runtime.sessions) as s:
        ev = s.get(AuditEvent, 1)
        assert ev is not None
        ev.kind = "forged"
    with pytest.raises(AuditLogImmutable), transaction(runtime.sessions) as s:
        ev = s.get(AuditEvent, 1)
        s.delete(ev)


@pytest.mark.parametrize("sql", ["UPDATE audit_events SET kind = 'forged'", "DELETE FROM audit_events"])
def test_database_refuses_to_change_an_event(runtime: Runtime, sql: str) -> None:
    with transaction(runtime.sessions) as s:
        append_event(s, "test.one", "x:1")
    with pytest.raises(DatabaseError, match="append-only"), runtime.engine.begin() as conn:
        conn.execute(text(sql))
    with runtime.sessions() as s:
        assert s.scalar(select(AuditEvent.kind)) == "test.one"
