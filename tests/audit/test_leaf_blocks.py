"""Level-0 tree blocks written by the bulk appends, ahead of the checkpoints, on both databases.

A checkpoint reads those blocks instead of every new event's leaf hash: they must be exactly the blocks it
would have built, a block an append did not write (a single-event append, a batch that only partly fills
it, a log written before, a lost row) is healed from the events, and a hole or a damaged block under them
still stops it.
"""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import select, text

from audit import checkpoints, merkle, notes
from audit.checkpoints import make_checkpoint
from audit.log_verify import verify_log
from audit.tree import TreeIncomplete
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


def _built(leaves: list[bytes]) -> dict[int, bytes]:
    """Level 0 as a checkpoint over all ``leaves`` leaves it: 64 hashes a block, the last one short."""
    return {i // 64: b"".join(leaves[i : i + 64]) for i in range(0, len(leaves), 64)}


def test_a_bulk_append_writes_the_blocks_its_leaves_fill_whole_as_a_checkpoint_builds_them(runtime: Runtime) -> None:
    _append(runtime, [100, 200, 37, 10, 300])  # leaves 0-99, 100-299, 300-336, 337-346, 347-646
    leaves = _leaves(runtime)
    built = _built(leaves)
    # whole inside one batch: block 0 (0-63); 2, 3 (128-255); 6-9 (384-639); none of the two small batches
    assert _level0(runtime) == {b: built[b] for b in (0, 2, 3, 6, 7, 8, 9)}
    signer = new_signer()
    with transaction(runtime.sessions) as s:
        checkpoint = make_checkpoint(s, signer)
    assert checkpoint.root_hash == merkle.tree_hash(leaves).hex()
    assert _level0(runtime) == built  # the missing ones and the short last one written by the checkpoint
    with transaction(runtime.sessions) as s:
        for seq in (1, 64, 65, 129, 300, 337, 647):
            p = checkpoints.event_proof(s, seq)
            assert notes.verify_proof(p.proof, p.leaf, signer.verifier)[1].size == 647
        assert verify_log(s, signer.verifier).ok


def test_a_checkpoint_heals_the_blocks_no_append_wrote_or_that_were_lost(runtime: Runtime) -> None:
    signer = new_signer()
    _append(runtime, [150])
    with transaction(runtime.sessions) as s:
        make_checkpoint(s, signer)  # size 150: its short block 2 holds leaves 128-149
    _append(runtime, [400], tree_blocks=False)  # as the code before 0009 appended: no block
    with transaction(runtime.sessions) as s:
        append_event(s, "test.single", "recording:x", {"one": 1})  # single appends never write blocks
    _append(runtime, [700])
    # a crash cannot part an append from its blocks (one transaction); a lost row is the same case to heal
    sql(runtime.engine, "DELETE FROM audit_tree_blocks WHERE level = 0 AND block = 12")
    leaves = _leaves(runtime)
    assert len(leaves) == 1251 and 12 not in _level0(runtime)
    with transaction(runtime.sessions) as s:
        checkpoint = make_checkpoint(s, signer)
        assert checkpoint.size == 1251 and checkpoint.root_hash == merkle.tree_hash(leaves).hex()
        assert checkpoints.consistency(s, 150, 1251) == merkle.consistency_proof(150, 1251, leaves)
    assert _level0(runtime) == _built(leaves)
    _append(runtime, [64 * 5])
    leaves = _leaves(runtime)
    with transaction(runtime.sessions) as s:
        assert make_checkpoint(s, signer).root_hash == merkle.tree_hash(leaves).hex()
        assert verify_log(s, signer.verifier).ok


@pytest.mark.parametrize(
    ("tamper", "problem"),
    [
        ("DELETE FROM audit_events WHERE seq = 150", "events 75..264 have a hole"),  # under appender block 2
        ("UPDATE audit_tree_blocks SET hashes = substr(hashes, 1, 63 * 32) WHERE level = 0 AND block = 3", "0/3"),
        ("UPDATE audit_tree_blocks SET hashes = substr(hashes, 1, 5 * 32) WHERE level = 0 AND block = 1", "0/1"),
    ],
)
def test_a_hole_or_a_damaged_block_under_the_appenders_blocks_stops_the_checkpoint(
    runtime: Runtime, tamper: str, problem: str
) -> None:
    """After checkpoint 64 (no short block) and checkpoint 74 (short block 1), 190 events in bulk write blocks
    2 and 3 whole; then an event under block 2 is deleted, block 3 is cut short, or the short block is."""
    signer = new_signer()
    for count in (64, 10):
        _append(runtime, [count])
        with transaction(runtime.sessions) as s:
            make_checkpoint(s, signer)
    _append(runtime, [190])
    assert set(_level0(runtime)) == {0, 1, 2, 3}
    drop_guards(runtime.engine)
    try:
        sql(runtime.engine, tamper)
        before = _level0(runtime)
        with pytest.raises(TreeIncomplete, match=problem), transaction(runtime.sessions) as s:
            make_checkpoint(s, signer)
        with transaction(runtime.sessions) as s:
            assert s.scalars(select(AuditCheckpoint.size).order_by(AuditCheckpoint.size)).all() == [64, 74]
        assert _level0(runtime) == before
    finally:
        restore_guards(runtime.engine)


def test_0009_downgrade_leaves_level_0_as_the_code_before_wrote_it(runtime: Runtime) -> None:
    """Down to 0008 the blocks beyond the latest checkpoint go (0007's downgrade needs an unbroken level 0),
    down to 0006 and up again the log still verifies and takes the next checkpoint."""
    signer = new_signer()
    _append(runtime, [300])
    with transaction(runtime.sessions) as s:
        make_checkpoint(s, signer)
    _append(runtime, [500])  # blocks 5 (320-383) to 12 (768-831 would not be whole): 5-11
    leaves = _leaves(runtime)
    assert set(_level0(runtime)) == set(range(12))
    cfg = alembic_config()
    with runtime.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0008")
    assert _level0(runtime) == _built(leaves[:300])
    with runtime.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
    upgrade(runtime.engine)
    with transaction(runtime.sessions) as s:
        assert make_checkpoint(s, signer).root_hash == merkle.tree_hash(leaves).hex()
        assert verify_log(s, signer.verifier).ok
    assert _level0(runtime) == _built(leaves)
