"""Audit events: canonical bytes, gap-free sequence, and append-only at the ORM and database level."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from storage.db import transaction
from storage.events import (
    AuditLogImmutable,
    _leaf_text,
    _round_trips,
    append_event,
    append_events,
    canonical_json,
    iso_utc,
    leaf_bytes,
    leaf_hash,
)
from storage.models import AuditEvent
from storage.runtime import Runtime
from storage.tree_hashes import subtree_roots


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


TRICKY_DETAILS: list[dict[Any, object]] = [
    {},
    {"recording": 7, "sha256": "ab" * 32, "manual": False},
    {"added": [{"recording": 1, "sha256": "x"}], "removed": [], "nested": {"z": [1, 2.5, None, True]}},
    {"名称": "执法记录仪 🎥", "quote": 'a"b\\c\n', "float": 0.1 + 0.2, "neg": -0.0, "big": 2**70},
    {"at": datetime(2024, 5, 1, 8, 0, 0, 123456, tzinfo=UTC), "tuple": (1, "two")},
    {10: "int keys sort differently once parsed", 9: "so they take the slow path", 2: {3: [4]}},
    {"n": [{"i": {10: "ten", 9: "nine"}}]},
]


def test_bulk_events_are_the_same_leaves_as_single_ones(runtime: Runtime) -> None:
    """append_events (COPY on PostgreSQL, a spliced leaf) stores exactly what append_event would."""
    items = [("test.bulk", f"x:{i}", d) for i, d in enumerate(TRICKY_DETAILS)]
    with transaction(runtime.sessions) as s:
        append_event(s, "test.single", "x:single", TRICKY_DETAILS[3])
        assert append_events(s, items, actor="tester") == len(items)
        append_event(s, "test.after", "x:after")
    with runtime.sessions() as s:
        events = s.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [e.seq for e in events] == list(range(1, len(items) + 3))
    assert [e.kind for e in events] == ["test.single", *["test.bulk"] * len(items), "test.after"]
    for e, (_, subject, details) in zip(events[1:-1], items, strict=True):
        assert e.subject == subject and e.actor == "tester"
        assert e.details == canonical_json(details)
    assert events[1 + 3].details == events[0].details  # the same details give the same text either way
    for e in events:
        assert e.leaf_hash == leaf_hash(leaf_bytes(e.seq, e.at, e.actor, e.kind, e.subject, e.details))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=12,
)


@given(details=st.dictionaries(st.text(), json_values, max_size=5), subject=st.text(), kind=st.text())
def test_spliced_leaf_equals_leaf_bytes(details: dict[str, object], subject: str, kind: str) -> None:
    at = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    text_ = canonical_json(details)
    assert _round_trips(details)
    spliced = _leaf_text(3, iso_utc(at), canonical_json("actor"), canonical_json(kind), canonical_json(subject), text_)
    assert spliced.encode("utf-8") == leaf_bytes(3, at, "actor", kind, subject, text_)


def _rfc6962_root(hashes: list[bytes]) -> bytes:
    """RFC 6962's MTH over node hashes, written out here: split at the largest power of two below the count."""
    if len(hashes) == 1:
        return hashes[0]
    k = 1 << ((len(hashes) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + _rfc6962_root(hashes[:k]) + _rfc6962_root(hashes[k:])).digest()


@pytest.mark.parametrize("count", [0, 1, 2, 3, 63, 64, 65, 128, 200, 256])
@pytest.mark.parametrize("levels", [0, 1, 2, 6])
def test_subtree_roots_are_rfc6962_roots_of_each_whole_subtree_and_leave_the_rest(count: int, levels: int) -> None:
    # the block roots of a bulk append and of a checkpoint: each root of 2**levels consecutive hashes, a
    # trailing part that fills no subtree left out (its hashes wait for the next append or checkpoint)
    hashes = [hashlib.sha256(b"\x00" + n.to_bytes(4, "big")).digest() for n in range(count)]
    size = 1 << levels
    expected = b"".join(_rfc6962_root(hashes[i : i + size]) for i in range(0, count - size + 1, size))
    assert subtree_roots(b"".join(hashes), levels) == expected
