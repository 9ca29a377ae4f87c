"""``bwc audit verify`` against each tampering, on a real SQLite and a real PostgreSQL, guards dropped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from audit import merkle, notes
from audit.checkpoints import make_checkpoint
from audit.log_verify import Report, verify_log
from audit.notes import Checkpoint, Signer
from audit.tree import TreeIncomplete
from storage.db import transaction
from storage.events import append_events, leaf_bytes, leaf_hash
from storage.models import AuditCheckpoint, AuditEvent, AuditTreeBlock
from storage.runtime import Runtime
from tests.fixtures.audit_log import drop_guards, fill, new_signer, restore_guards, sql

SIZES = [10, 20]  # two checkpoints, then three events no checkpoint covers yet
TAIL = 3


@pytest.fixture
def signer() -> Signer:
    return new_signer()


@pytest.fixture
def unguarded(runtime: Runtime) -> Iterator[Runtime]:
    """The runtime; whatever guards the test drops are back for the next test (PostgreSQL keeps its schema)."""
    yield runtime
    restore_guards(runtime.engine)


@pytest.fixture
def log(unguarded: Runtime, signer: Signer) -> Runtime:
    fill(unguarded, signer, SIZES, tail=TAIL)
    drop_guards(unguarded.engine)
    return unguarded


def _verify(rt: Runtime, signer: Signer) -> Report:
    with transaction(rt.sessions) as s:
        return verify_log(s, signer.verifier)


def _first_bad(rt: Runtime, signer: Signer) -> int | None:
    report = _verify(rt, signer)
    assert not report.ok, "tampering went unnoticed"
    assert report.finding is not None
    return report.finding.seq


def test_an_untouched_log_verifies(log: Runtime, signer: Signer) -> None:
    report = _verify(log, signer)
    assert report.ok, report.finding
    assert (report.events, report.checkpoints) == (23, 2)


def test_edited_details_name_the_event(log: Runtime, signer: Signer) -> None:
    sql(log.engine, "UPDATE audit_events SET details = :d WHERE seq = 7", d='{"n":999}')
    assert _first_bad(log, signer) == 7


def test_an_edit_after_the_last_checkpoint_is_caught_by_the_leaf_hash(log: Runtime, signer: Signer) -> None:
    sql(log.engine, "UPDATE audit_events SET actor = 'token:mallory' WHERE seq = 22")
    assert _first_bad(log, signer) == 22


def test_a_deleted_event_is_the_first_missing_seq(log: Runtime, signer: Signer) -> None:
    sql(log.engine, "DELETE FROM audit_events WHERE seq = 12")
    assert _first_bad(log, signer) == 12


def test_an_inserted_event_is_caught_even_with_a_correct_leaf_hash(log: Runtime, signer: Signer) -> None:
    # The forged event 5 hashes to its recorded leaf hash; the first event that does not is the real event 5,
    # moved to seq 6 (its leaf holds its seq). The leaf hashes are stored once, in the events: no second copy
    # tells which of the two was inserted (migration 0010).
    with transaction(log.sessions) as s:
        at = s.get(AuditEvent, 5)
        assert at is not None
        when = at.at
    forged = leaf_hash(leaf_bytes(5, when, "system", "test.kind0", "recording:x", "{}"))
    sql(
        log.engine,
        "UPDATE audit_events SET seq = -seq WHERE seq >= 5",
        "UPDATE audit_events SET seq = 1 - seq WHERE seq < 0",
        "INSERT INTO audit_events (seq, at, actor, kind, subject, details, leaf_hash) "
        "SELECT 5, at, 'system', 'test.kind0', 'recording:x', '{}', :h FROM audit_events WHERE seq = 6",
        h=forged,
    )
    report = _verify(log, signer)
    assert report.finding is not None and report.finding.seq == 6
    assert "inserted or moved" in report.finding.message


def test_two_swapped_events_name_the_earlier(log: Runtime, signer: Signer) -> None:
    sql(
        log.engine,
        "UPDATE audit_events SET seq = -1 WHERE seq = 4",
        "UPDATE audit_events SET seq = 4 WHERE seq = 9",
        "UPDATE audit_events SET seq = 9 WHERE seq = -1",
    )
    assert _first_bad(log, signer) == 4


def test_a_cut_off_end_is_caught_by_the_checkpoint(log: Runtime, signer: Signer) -> None:
    sql(log.engine, "DELETE FROM audit_events WHERE seq > 15")
    assert _first_bad(log, signer) == 16


def test_truncate_is_refused_and_caught_once_the_trigger_is_gone(unguarded: Runtime, signer: Signer) -> None:
    runtime = unguarded
    fill(runtime, signer, SIZES)
    if runtime.engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"):
            sql(runtime.engine, "TRUNCATE audit_events")
        drop_guards(runtime.engine)
        sql(runtime.engine, "TRUNCATE audit_events")
    else:  # SQLite has no TRUNCATE: its equivalent is an unqualified DELETE, refused by the row trigger
        with pytest.raises(DBAPIError, match="append-only"):
            sql(runtime.engine, "DELETE FROM audit_events")
        drop_guards(runtime.engine)
        sql(runtime.engine, "DELETE FROM audit_events")
    assert _first_bad(runtime, signer) == 1


def test_a_full_rewrite_with_every_hash_recomputed_is_bounded_by_the_checkpoints(log: Runtime, signer: Signer) -> None:
    # The administrator edits event 15 and recomputes its leaf hash and the whole stored tree: only the
    # signed checkpoints still disagree, so the first bad seq is bounded by the last checkpoint that matches.
    with transaction(log.sessions) as s:
        ev = s.get(AuditEvent, 15)
        assert ev is not None
        new_leaf = leaf_hash(leaf_bytes(15, ev.at, ev.actor, ev.kind, ev.subject, '{"n":0}'))
    sql(log.engine, "UPDATE audit_events SET details = :d, leaf_hash = :h WHERE seq = 15", d='{"n":0}', h=new_leaf)
    sql(log.engine, "DELETE FROM audit_tree_blocks")
    with transaction(log.sessions) as s:
        rows = s.execute(select(AuditEvent.leaf_hash).order_by(AuditEvent.seq).limit(20)).scalars().all()
    hashes = [bytes.fromhex(h) for h in rows]
    blocks = [  # 20 leaves: each level of the tree fits in its block 0
        (level, b"".join(merkle.tree_hash(hashes[i << level : (i + 1) << level]) for i in range(20 >> level)))
        for level in range(5)
    ]
    with log.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO audit_tree_blocks (level, block, hashes) VALUES (:l, 0, :h)"),
            [{"l": lv, "h": h} for lv, h in blocks],
        )
    report = _verify(log, signer)
    assert report.finding is not None and report.finding.seq == 11
    assert "checkpoint 20" in report.finding.message


def test_a_checkpoint_by_another_key_is_refused(log: Runtime, signer: Signer) -> None:
    with transaction(log.sessions) as s:
        size = 23
        root = merkle.tree_hash(
            [bytes.fromhex(h) for h in s.scalars(select(AuditEvent.leaf_hash).order_by(AuditEvent.seq))]
        )
    forged = notes.sign_checkpoint(Checkpoint(signer.name, size, root), new_signer())
    sql(
        log.engine,
        "INSERT INTO audit_checkpoints (size, root_hash, note, created_at) "
        "SELECT :size, :root, :note, created_at FROM audit_checkpoints WHERE size = 20",
        size=size,
        root=root.hex(),
        note=forged,
    )
    report = _verify(log, signer)
    assert report.finding is not None and report.finding.seq is None
    assert "size 23" in report.finding.message and "no signature" in report.finding.message


def test_checkpoints_cannot_be_changed_while_the_guards_stand(runtime: Runtime, signer: Signer) -> None:
    fill(runtime, signer, [4])
    with pytest.raises(DBAPIError, match="append-only"):
        sql(runtime.engine, "UPDATE audit_checkpoints SET size = 5")
    with pytest.raises(DBAPIError, match="append-only"):
        sql(runtime.engine, "DELETE FROM audit_checkpoints")


def test_a_new_checkpoint_is_refused_when_the_log_no_longer_matches_the_last(log: Runtime, signer: Signer) -> None:
    # The recorded leaf of event 20, of the subtree of events 17-20 that the tree of 23 events is built on (hashed
    # again from the events' leaves: the tree stores no level below 6), no longer what was signed.
    with transaction(log.sessions) as s:
        assert s.get(AuditTreeBlock, (0, 0)) is None and s.get(AuditTreeBlock, (2, 0)) is None
    sql(log.engine, "UPDATE audit_events SET leaf_hash = :h WHERE seq = 20", h="07" * 32)
    with pytest.raises(Exception, match="no longer matches checkpoint 20"), transaction(log.sessions) as s:
        make_checkpoint(s, signer)


def test_a_checkpoint_of_the_empty_log_then_events_verifies(runtime: Runtime, signer: Signer) -> None:
    with transaction(runtime.sessions) as s:
        make_checkpoint(s, signer)
    fill(runtime, signer, [], tail=5)
    assert _verify(runtime, signer).ok


def test_a_checkpoint_kept_outside_catches_a_rewrite_of_the_checkpoints_too(unguarded: Runtime, signer: Signer) -> None:
    # The administrator truncates the log AND the checkpoints: only the note an auditor kept still tells.
    fill(unguarded, signer, [8])
    with transaction(unguarded.sessions) as s:
        kept = s.scalars(select(AuditCheckpoint.note)).one()
    drop_guards(unguarded.engine)
    sql(unguarded.engine, "DELETE FROM audit_events WHERE seq > 5")
    if unguarded.engine.dialect.name == "postgresql":
        sql(unguarded.engine, "DROP TRIGGER audit_checkpoints_append_only ON audit_checkpoints")
    else:
        sql(unguarded.engine, "DROP TRIGGER audit_checkpoints_no_delete")
    sql(unguarded.engine, "DELETE FROM audit_checkpoints")
    assert _verify(unguarded, signer).ok  # the database alone cannot tell
    with transaction(unguarded.sessions) as s:
        report = verify_log(s, signer.verifier, [kept])
    assert report.finding is not None and report.finding.seq == 6
    with transaction(unguarded.sessions) as s:
        make_checkpoint(s, signer)  # a new history signed with the same key: a fork at size 5 vs the kept 8
        append_events(s, [("k", "forged", {})] * 3)
        make_checkpoint(s, signer)
    with transaction(unguarded.sessions) as s:
        forked = verify_log(s, signer.verifier, [kept])
    assert forked.finding is not None and "two different signed roots for size 8" in forked.finding.message
    with transaction(unguarded.sessions) as s:
        bad = verify_log(s, signer.verifier, [kept.replace("\n8\n", "\n9\n")])
    assert bad.finding is not None and "kept checkpoint no. 1" in bad.finding.message


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        ("DELETE FROM audit_events WHERE seq = 22", "events 21..23 have a hole"),
        ("UPDATE audit_events SET leaf_hash = 'zz' || substr(leaf_hash, 3) WHERE seq = 22", "damaged leaf hash"),
        ("UPDATE audit_events SET leaf_hash = substr(leaf_hash, 3) WHERE seq = 21", "damaged leaf hash"),
        # under the previous checkpoint's short block of leaves, read again from the events
        ("UPDATE audit_events SET leaf_hash = substr(leaf_hash, 3) WHERE seq = 19", "events 1..23 hold a damaged"),
    ],
)
def test_a_checkpoint_over_damaged_rows_is_refused_and_writes_nothing(
    log: Runtime, signer: Signer, tamper: str, problem: str
) -> None:
    # The three events after checkpoint 20 or the leaves of the short block it left are damaged before the next
    # checkpoint.
    with transaction(log.sessions) as s:
        before = s.execute(select(AuditTreeBlock.level, AuditTreeBlock.block, AuditTreeBlock.hashes)).all()
    sql(log.engine, tamper)
    with transaction(log.sessions) as s:
        damaged = sorted(s.execute(select(AuditTreeBlock.level, AuditTreeBlock.block, AuditTreeBlock.hashes)).all())
    with pytest.raises(TreeIncomplete, match=problem), transaction(log.sessions) as s:
        make_checkpoint(s, signer)
    with transaction(log.sessions) as s:
        assert s.scalars(select(AuditCheckpoint.size).order_by(AuditCheckpoint.size)).all() == [10, 20]
        after = sorted(s.execute(select(AuditTreeBlock.level, AuditTreeBlock.block, AuditTreeBlock.hashes)).all())
    assert after == damaged and len(after) == len(before)
