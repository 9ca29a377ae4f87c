"""The roots of the blocks of 64 leaves written by the bulk appends, ahead of the checkpoints, on both databases.

A checkpoint reads those roots (node 6/b) instead of the leaves: they must be exactly the nodes of the tree
over the events, a root an append did not write (a single-event append, a batch that only partly fills its
block, a log written before, a lost row) is hashed from the events, and a hole or a damaged row under them
still stops it.
"""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import select, text

from audit import checkpoints, merkle, notes
from audit.checkpoints import make_checkpoint
from audit.log_verify import verify_log
from storage.db import transaction
from storage.events import append_event, append_events, leaf_bytes
from storage.migrate import alembic_config, upgrade
from storage.models import AuditCheckpoint, AuditEvent
from storage.runtime import Runtime
from tests.fixtures.audit_log import drop_guards, new_signer, restore_guards, sql


def _items(start: int, count: int) -> list[tuple[str, str, dict[str, object]]]:
    return [("test.bulk", f"recording:{n}", {"n": n, "note": "ü"}) for n in range(start, start + count)]


def _append(rt: Runtime, counts: list[int], tree_blocks: bool = True) -> None:
    with transaction(rt.sessions) as s:
        done = s.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1)) or 0
    for count in counts:
        with transaction(rt.sessions) as s:
            append_events(s, _items(done, count), tree_blocks=tree_blocks)
        done += count


def _leaves(rt: Runtime) -> list[bytes]:
    """Every event's leaf hash, from its content (not from any stored hash)."""
    with transaction(rt.sessions) as s:
        events = s.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        return [merkle.leaf_hash(leaf_bytes(e.seq, e.at, e.actor, e.kind, e.subject, e.details)) for e in events]


def _level0(rt: Runtime) -> dict[int, bytes]:
    with rt.engine.connect() as conn:
        rows = conn.execute(text("SELECT block, hashes FROM audit_tree_blocks WHERE level = 0"))
        return {int(b): bytes(h) for b, h in rows}


def _roots(rt: Runtime) -> dict[int, bytes]:
    with rt.engine.connect() as conn:
        return {int(b): bytes(r) for b, r in conn.execute(text("SELECT block, root FROM audit_block_roots"))}


def _built(leaves: list[bytes]) -> dict[int, bytes]:
    """Level 0 as the code of 0009 stored it over all ``leaves``: 64 hashes a block, the last one short."""
    return {i // 64: b"".join(leaves[i : i + 64]) for i in range(0, len(leaves), 64)}


def _root(leaves: list[bytes], block: int) -> bytes:
    """Node 6/``block`` by the independent RFC implementation."""
    return merkle.tree_hash(leaves[64 * block : 64 * (block + 1)])


def test_a_bulk_append_writes_the_roots_of_the_blocks_its_leaves_fill_whole(runtime: Runtime) -> None:
    _append(runtime, [100, 200, 37, 10, 300])  # leaves 0-99, 100-299, 300-336, 337-346, 347-646
    leaves = _leaves(runtime)
    # whole inside one batch: block 0 (0-63); 2, 3 (128-255); 6-9 (384-639); none of the two small batches
    assert _roots(runtime) == {b: _root(leaves, b) for b in (0, 2, 3, 6, 7, 8, 9)}
    assert _level0(runtime) == {}  # the leaves are the events' own leaf hashes, not stored again
    signer = new_signer()
    with transaction(runtime.sessions) as s:
        checkpoint = make_checkpoint(s, signer)
    assert checkpoint.root_hash == merkle.tree_hash(leaves).hex()
    assert _level0(runtime) == {}
    with transaction(runtime.sessions) as s:
        for seq in (1, 64, 65, 129, 300, 337, 647):
            p = checkpoints.event_proof(s, seq)
            assert notes.verify_proof(p.proof, p.leaf, signer.verifier)[1].size == 647
        assert verify_log(s, signer.verifier).ok


def test_a_checkpoint_hashes_the_roots_no_append_wrote_or_that_were_lost(runtime: Runtime) -> None:
    signer = new_signer()
    _append(runtime, [150])
    with transaction(runtime.sessions) as s:
        make_checkpoint(s, signer)  # size 150: its short block 2 holds leaves 128-149
    _append(runtime, [400], tree_blocks=False)  # as the code before 0009 appended: no root
    with transaction(runtime.sessions) as s:
        append_event(s, "test.single", "recording:x", {"one": 1})  # single appends never write roots
    _append(runtime, [700])
    # a crash cannot part an append from its roots (one transaction); a lost row is the same case to heal
    sql(runtime.engine, "DELETE FROM audit_block_roots WHERE block = 12")
    leaves = _leaves(runtime)
    assert len(leaves) == 1251 and set(_roots(runtime)) == {0, 1} | set(range(9, 19)) - {12}
    with transaction(runtime.sessions) as s:
        checkpoint = make_checkpoint(s, signer)
        assert checkpoint.size == 1251 and checkpoint.root_hash == merkle.tree_hash(leaves).hex()
        assert checkpoints.consistency(s, 150, 1251) == merkle.consistency_proof(150, 1251, leaves)
    _append(runtime, [64 * 5])
    leaves = _leaves(runtime)
    with transaction(runtime.sessions) as s:
        assert make_checkpoint(s, signer).root_hash == merkle.tree_hash(leaves).hex()
        assert checkpoints.consistency(s, 1251, len(leaves)) == merkle.consistency_proof(1251, len(leaves), leaves)
        assert verify_log(s, signer.verifier).ok


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        ("DELETE FROM audit_events WHERE seq = 150", "events 75..264 have a hole"),  # under appender root 2
        ("UPDATE audit_block_roots SET root = substr(root, 1, 31) WHERE block = 3", "root of leaf block 3"),
        # a leaf of the short block the previous checkpoint left, read again from the events
        ("UPDATE audit_events SET leaf_hash = substr(leaf_hash, 3) WHERE seq = 70", "events 65..128 hold a damaged"),
        ("UPDATE audit_events SET leaf_hash = :h WHERE seq = 70", "no longer matches checkpoint 74"),
    ],
)
def test_a_hole_or_a_damaged_row_under_the_appenders_roots_stops_the_checkpoint(
    runtime: Runtime, tamper: str, problem: str
) -> None:
    """After checkpoint 64 (no short block) and checkpoint 74 (short block 1), 190 events in bulk write the
    roots of blocks 2 and 3; then an event under block 2 is deleted, root 3 is cut short, or a leaf of the
    short block is damaged or replaced."""
    signer = new_signer()
    for count in (64, 10):
        _append(runtime, [count])
        with transaction(runtime.sessions) as s:
            make_checkpoint(s, signer)
    _append(runtime, [190])
    assert set(_roots(runtime)) == {0, 2, 3}
    drop_guards(runtime.engine)
    try:
        sql(runtime.engine, tamper, h="07" * 32)
        with runtime.engine.connect() as conn:
            before = conn.execute(text("SELECT level, block, hashes FROM audit_tree_blocks")).all()
        with pytest.raises(Exception, match=problem), transaction(runtime.sessions) as s:
            make_checkpoint(s, signer)
        with transaction(runtime.sessions) as s:
            assert s.scalars(select(AuditCheckpoint.size).order_by(AuditCheckpoint.size)).all() == [64, 74]
        with runtime.engine.connect() as conn:
            assert conn.execute(text("SELECT level, block, hashes FROM audit_tree_blocks")).all() == before
    finally:
        restore_guards(runtime.engine)


def test_0010_downgrade_writes_level_0_as_the_code_before_stored_it(runtime: Runtime) -> None:
    """Down to 0009 level 0 is written again from the events up to the latest checkpoint and the roots go;
    down to 0006 and up again the log still verifies and takes the next checkpoint, and level 0 is gone."""
    signer = new_signer()
    _append(runtime, [300])
    with transaction(runtime.sessions) as s:
        make_checkpoint(s, signer)
    _append(runtime, [500])  # roots 5 (320-383) to 11 (704-767)
    leaves = _leaves(runtime)
    assert set(_roots(runtime)) == {0, 1, 2, 3} | set(range(5, 12)) and _level0(runtime) == {}
    cfg = alembic_config()
    with runtime.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0009")
    assert _level0(runtime) == _built(leaves[:300])
    with runtime.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
    upgrade(runtime.engine)
    assert _level0(runtime) == {} and _roots(runtime) == {}
    with transaction(runtime.sessions) as s:
        assert make_checkpoint(s, signer).root_hash == merkle.tree_hash(leaves).hex()
        assert verify_log(s, signer.verifier).ok
        p = checkpoints.event_proof(s, 301)
        assert notes.verify_proof(p.proof, p.leaf, signer.verifier)[1].size == 800
