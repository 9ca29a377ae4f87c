"""A checkpoint's own transaction commits without waiting for the disk (``storage.db.derived_transaction``), which
is safe because a lost checkpoint is rebuilt from the durable events into the very same signed note."""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from audit import checkpoints, notes
from audit.checkpointer import checkpoint_once
from audit.checkpoints import make_checkpoint
from audit.log_verify import verify_log
from storage.db import derived_transaction, transaction
from storage.events import append_events
from storage.models import AuditCheckpoint
from storage.runtime import Runtime
from tests.fixtures.audit_log import drop_guards, fill, new_signer, restore_guards, sql


def _items(start: int, count: int) -> list[tuple[str, str, dict[str, object]]]:
    return [("test.bulk", f"recording:{n}", {"n": n}) for n in range(start, start + count)]


def _setting(s: Session) -> str:
    if s.get_bind().dialect.name == "postgresql":
        return str(s.execute(text("SHOW synchronous_commit")).scalar_one())
    return {1: "NORMAL", 2: "FULL"}.get(s.execute(text("PRAGMA synchronous")).scalar_one(), "other")


def test_only_a_checkpoints_own_transaction_commits_without_waiting_for_the_disk(runtime: Runtime) -> None:
    """The checkpointer's transaction is relaxed for itself only: every other transaction, the next ones on
    the same pooled connection included, and a checkpoint made beside appends, commits as durably as before."""
    relaxed, durable = ("off", "on") if runtime.engine.dialect.name == "postgresql" else ("NORMAL", "FULL")
    signer = new_signer()
    for round_ in range(3):
        with transaction(runtime.sessions) as s:
            append_events(s, _items(100 * round_, 70))
            make_checkpoint(s, signer)  # beside appends: an ordinary transaction
            assert _setting(s) == durable
        assert checkpoint_once(runtime.sessions, signer) == 100 * round_ + 70
        with derived_transaction(runtime.sessions) as s:
            make_checkpoint(s, signer)
            assert _setting(s) == relaxed
        with transaction(runtime.sessions) as s:
            assert _setting(s) == durable
            append_events(s, _items(100 * round_ + 70, 30))


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
    with derived_transaction(runtime.sessions) as s:
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
    with derived_transaction(runtime.sessions) as s:
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
