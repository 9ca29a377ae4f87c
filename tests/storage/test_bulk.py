"""Bulk writes (COPY and array statements on PostgreSQL, executemany on SQLite) store what the ORM would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from storage.bulk import delete_pairs, insert_rows, reserve_ids, table_of, update_rows
from storage.db import transaction
from storage.models import Action, ActionRecording, Finding, Recording
from storage.runtime import Runtime

T0 = datetime(2024, 5, 1, 8, 0, 0, 250000, tzinfo=UTC)


def _seed(rt: Runtime) -> tuple[list[int], list[int]]:
    with transaction(rt.sessions) as s:
        actions = [Action(action_id=f"A{i}", started_at=T0, ended_at=T0 + timedelta(minutes=i)) for i in range(3)]
        recs = [
            Recording(sha256=f"{i:064x}", size=1, object_key=f"k{i}", original_name=f"r{i}.mp4", started_at=T0)
            for i in range(3)
        ]
        s.add_all([*actions, *recs])
        s.flush()
        return [a.id for a in actions], [r.id for r in recs]


def test_insert_update_delete_round_trip(runtime: Runtime) -> None:
    action_ids, rec_ids = _seed(runtime)
    links = [
        (a, r, a == action_ids[0], T0 + timedelta(seconds=i))
        for i, (a, r) in enumerate(zip(action_ids, rec_ids, strict=True))
    ]
    reasons = [{"code": "shortfall", "from": "2024-05-01T08:00:00+00:00", "devices_recording": ["执法-1"]}]
    with transaction(runtime.sessions) as s:
        assert (
            insert_rows(s, table_of(ActionRecording), ("action_id", "recording_id", "manual", "linked_at"), links) == 3
        )
        rows = [
            (action_ids[0], "complete", [], None, T0),
            (action_ids[1], "pending", reasons, T0 + timedelta(hours=24), T0),
        ]
        columns = ("verdict", "reasons", "pending_until", "coverage_computed_at")
        assert update_rows(s, table_of(Action), "id", columns, rows) == 2
        assert delete_pairs(s, table_of(ActionRecording), ("action_id", "recording_id"), [(action_ids[2], rec_ids[2])])
    with runtime.sessions() as s:
        stored = {(r.action_id, r.recording_id): (r.manual, r.linked_at) for r in s.scalars(select(ActionRecording))}
        acts = {a.id: a for a in s.scalars(select(Action))}
    assert stored == {(a, r): (m, at) for a, r, m, at in links[:2]}
    assert (acts[action_ids[0]].verdict, acts[action_ids[0]].reasons, acts[action_ids[0]].pending_until) == (
        "complete",
        [],
        None,
    )
    assert acts[action_ids[1]].reasons == reasons
    assert acts[action_ids[1]].pending_until == T0 + timedelta(hours=24)
    assert acts[action_ids[1]].coverage_computed_at == T0  # microseconds survive
    assert acts[action_ids[2]].verdict is None  # rows not named are left alone
    # stored datetimes compare with ORM-written ones in SQL (SQLite keeps them as text)
    with runtime.sessions() as s:
        later = s.scalars(select(ActionRecording.recording_id).where(ActionRecording.linked_at > T0)).all()
    assert later == [rec_ids[1]]


def test_empty_batches_write_nothing(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as s:
        assert insert_rows(s, table_of(ActionRecording), ("action_id", "recording_id"), []) == 0
        assert update_rows(s, table_of(Action), "id", ("verdict",), []) == 0
        assert delete_pairs(s, table_of(ActionRecording), ("action_id", "recording_id"), []) == 0


def test_update_rows_with_values_every_row_shares(runtime: Runtime) -> None:
    """The same object in every row (``now``, an empty list, None) travels once; each row still gets it."""
    action_ids, _ = _seed(runtime)
    reasons: list[object] = [{"code": "no_footage"}]
    rows = [(a, "incomplete", reasons, None, T0) for a in action_ids[:2]]
    columns = ("verdict", "reasons", "pending_until", "coverage_computed_at")
    with transaction(runtime.sessions) as s:
        update_rows(s, table_of(Action), "id", columns, [(action_ids[2], "pending", [], T0, T0)])
        assert update_rows(s, table_of(Action), "id", columns, rows) == 2
    with runtime.sessions() as s:
        acts = {
            a.id: (a.verdict, a.reasons, a.pending_until, a.coverage_computed_at) for a in s.scalars(select(Action))
        }
    assert acts[action_ids[0]] == acts[action_ids[1]] == ("incomplete", reasons, None, T0)
    assert acts[action_ids[2]] == ("pending", [], T0, T0)


FINDING_COLUMNS = (
    *("id", "kind", "subject", "status", "automatic", "cause_present", "opened_at", "due_at"),
    *("closed_at", "details", "history", "updated_at"),
)
FINDING_PG_TYPES = (
    *("int4", "text", "text", "text", "bool", "bool", "timestamptz", "timestamptz", "timestamptz"),
    *("json", "json", "timestamptz"),
)


def test_reserved_ids_are_fresh_and_rows_copied_with_them_read_back_whole(runtime: Runtime) -> None:
    """Ids drawn before the insert are the rows' ids, ascending, and never handed out again (the ORM's next
    insert gets another); JSON values go in by a binary COPY on PostgreSQL, a shared one serialized once, and
    read back as they were."""
    history = [{"at": T0.isoformat(), "change": "opened", "note": '执法仪 "2"'}]
    with transaction(runtime.sessions) as s:
        s.add(Finding(kind="manual", subject="unit:U", status="open", opened_at=T0, due_at=T0, updated_at=T0))
        s.flush()
        first = s.scalar(select(Finding.id))
        assert reserve_ids(s, table_of(Finding), 0) == []
        ids = reserve_ids(s, table_of(Finding), 3)
        assert ids == sorted(ids) and len(set(ids)) == 3 and first not in ids
        details: list[dict[str, object]] = [{}, {"hours_after_end": 30.5, "path": "a/b.mp4"}, {}]
        rows = [
            (
                fid,
                "late_upload",
                f"recording:{fid}",
                "open",
                True,
                True,
                T0,
                T0 + timedelta(days=7),
                None,
                d,
                history,
                T0,
            )
            for fid, d in zip(ids, details, strict=True)
        ]
        assert insert_rows(s, table_of(Finding), FINDING_COLUMNS, rows, FINDING_PG_TYPES) == 3
    with transaction(runtime.sessions) as s:
        later = Finding(kind="manual", subject="unit:V", status="open", opened_at=T0, due_at=T0, updated_at=T0)
        s.add(later)
        s.flush()
        assert later.id not in ids and later.id != first
    with runtime.sessions() as s:
        stored = {f.id: f for f in s.scalars(select(Finding).where(Finding.kind == "late_upload"))}
    assert sorted(stored) == ids
    for fid, d in zip(ids, details, strict=True):
        f = stored[fid]
        assert (f.subject, f.details, f.history, f.closed_at) == (f"recording:{fid}", d, history, None)
        assert (f.opened_at, f.due_at, f.updated_at) == (T0, T0 + timedelta(days=7), T0)


def test_binary_copy_wants_a_type_for_each_column(runtime: Runtime) -> None:
    """PostgreSQL: a list of types that does not match the columns is refused before anything is sent."""
    if runtime.engine.dialect.name != "postgresql":
        return
    with transaction(runtime.sessions) as s, pytest.raises(ValueError, match="1 PostgreSQL types for 2 columns"):
        insert_rows(s, table_of(ActionRecording), ("action_id", "recording_id"), [(1, 2)], ("int4",))
