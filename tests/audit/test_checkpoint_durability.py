"""A checkpoint's own transaction does not wait for its WAL flush on PostgreSQL (``audit.checkpoints``), which is
safe because a lost checkpoint is rebuilt from the durable events into the very same signed note."""

from __future__ import annotations

from sqlalchemy import select, text

from audit import checkpoints, notes
from audit.checkpoints import make_checkpoint
from audit.log_verify import verify_log
from storage.db import transaction
from storage.events import append_events
from storage.models import AuditCheckpoint
from storage.runtime import Runtime
from tests.fixtures.audit_log import drop_guards, fill, new_signer, restore_guards, sql


def _items(start: int, count: int) -> list[tuple[str, str, dict[str, object]]]:
    return [("test.bulk", f"recording:{n}", {"n": n}) for n in range(start, start + count)]


def _durability(rt: Runtime, append_first: bool) -> str:
    """The setting a checkpoint's transaction commits with, read inside it."""
    signer = new_signer()
    with transaction(rt.sessions) as s:
        if append_first:
            append_events(s, _items(0, 70))
        else:
            with transaction(rt.sessions) as other:
                append_events(other, _items(0, 70))
        make_checkpoint(s, signer)
        if rt.engine.dialect.name == "postgresql":
            return str(s.execute(text("SHOW synchronous_commit")).scalar_one())
        return str(s.execute(text("PRAGMA synchronous")).scalar_one())


def test_only_a_checkpoint_that_wrote_nothing_else_commits_without_waiting_for_its_flush(runtime: Runtime) -> None:
    if runtime.engine.dialect.name == "postgresql":
        assert _durability(runtime, append_first=False) == "off"
        assert _durability(runtime, append_first=True) == "on"  # events in the same transaction stay durable
        with runtime.engine.connect() as conn:  # SET LOCAL: the next transaction of the connection is back
            assert conn.execute(text("SHOW synchronous_commit")).scalar_one() == "on"
    else:
        assert _durability(runtime, append_first=False) == "2"  # FULL: SQLite cannot change it in a transaction


def _tree(rt: Runtime) -> list[tuple[object, ...]]:
    with rt.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT level, block, hashes FROM audit_tree_blocks"))]


def test_a_lost_checkpoint_is_rebuilt_from_the_events_into_the_same_note(runtime: Runtime) -> None:
    """The last checkpoint's transaction is lost as a crash loses it (its row and its tree rows, nothing
    else): the next checkpoint signs the same note, and one made after more events is consistent with it."""
    signer = new_signer()
    fill(runtime, signer, [300, 4200])
    with transaction(runtime.sessions) as s:
        append_events(s, _items(0, 5000))
    tree_before = _tree(runtime)
    with transaction(runtime.sessions) as s:
        lost = make_checkpoint(s, signer).note  # size 9200, handed out
    assert _tree(runtime) != tree_before

    def lose() -> None:
        drop_guards(runtime.engine)
        if runtime.engine.dialect.name == "postgresql":
            sql(runtime.engine, "DROP TRIGGER audit_checkpoints_append_only ON audit_checkpoints")
        else:
            sql(runtime.engine, "DROP TRIGGER IF EXISTS audit_checkpoints_no_delete")
        try:
            sql(runtime.engine, "DELETE FROM audit_checkpoints WHERE size = 9200", "DELETE FROM audit_tree_blocks")
            with runtime.engine.begin() as conn:
                conn.execute(
                    text("INSERT INTO audit_tree_blocks (level, block, hashes) VALUES (:l, :b, :h)"),
                    [{"l": lv, "b": b, "h": h} for lv, b, h in tree_before],
                )
        finally:
            restore_guards(runtime.engine)
        assert _tree(runtime) == tree_before

    lose()
    with transaction(runtime.sessions) as s:
        assert make_checkpoint(s, signer).note == lost  # the same note, byte for byte
        p = checkpoints.event_proof(s, 9000)
        assert notes.verify_proof(p.proof, p.leaf, signer.verifier)[1].size == 9200
    lose()
    with transaction(runtime.sessions) as s:
        append_events(s, _items(5000, 100))
    with transaction(runtime.sessions) as s:
        assert make_checkpoint(s, signer).size == 9300
        assert s.scalars(select(AuditCheckpoint.size).order_by(AuditCheckpoint.size)).all() == [300, 4200, 9300]
        report = verify_log(s, signer.verifier, [lost])  # the handed-out note still holds against the log
        assert report.ok, report.finding
