"""The migrations build exactly the schema the models describe, and ``bwc init`` is safe to re-run."""

from __future__ import annotations

import re

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select, text

from audit import checkpoints, merkle, notes
from audit.checkpoints import make_checkpoint
from audit.log_verify import verify_log
from storage.db import MIGRATION_FILES, SchemaMismatch, check_reachable, schema_head, transaction
from storage.events import append_events
from storage.migrate import alembic_config, upgrade
from storage.models import AuditEvent, Base
from storage.runtime import Runtime
from tests.fixtures.audit_log import fill, new_signer


def test_migrated_schema_matches_models(runtime: Runtime) -> None:
    with runtime.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent(runtime: Runtime) -> None:
    upgrade(runtime.engine)
    upgrade(runtime.engine)
    assert set(Base.metadata.tables) <= set(inspect(runtime.engine).get_table_names())


def test_actions_keep_room_for_their_verdict_updates(runtime: Runtime) -> None:
    """PostgreSQL: ``actions`` keeps room on each page, so that the verdict written right after an
    action's insert (and by every recompute) is a heap-only update that touches no index (migration 0006)."""
    if runtime.engine.dialect.name != "postgresql":
        return
    with runtime.engine.connect() as conn:
        options = conn.execute(text("SELECT reloptions FROM pg_class WHERE relname = 'actions'")).scalar_one()
        assert options == ["fillfactor=30"]
        conn.execute(
            text(
                "INSERT INTO actions (action_id, started_at, ended_at, created_at, updated_at, reasons) VALUES "
                "('HOT-1', now(), now(), now(), now(), '[]')"
            )
        )
        conn.execute(
            text("UPDATE actions SET verdict = 'complete', coverage_computed_at = now() WHERE action_id = 'HOT-1'")
        )
        hot = conn.execute(
            text("SELECT n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = 'actions'")
        ).scalar_one()
        conn.rollback()
    assert hot == 1


def _blocks(rt: Runtime) -> dict[tuple[int, int], bytes]:
    with rt.engine.connect() as conn:
        rows = conn.execute(text("SELECT level, block, hashes FROM audit_tree_blocks"))
        return {(lv, b): bytes(h) for lv, b, h in rows}


def _every_level(leaves: list[bytes]) -> dict[tuple[int, int], bytes]:
    """The blocks the code before migration 0007 stored: every perfect subtree of every level, 64 a block,
    from the independent RFC implementation."""
    blocks: dict[tuple[int, int], bytes] = {}
    level = 0
    while len(leaves) >> level:
        nodes = [merkle.tree_hash(leaves[i << level : (i + 1) << level]) for i in range(len(leaves) >> level)]
        for b in range(0, len(nodes), 64):
            blocks[(level, b // 64)] = b"".join(nodes[b : b + 64])
        level += 1
    return blocks


def test_0007_keeps_a_tree_stored_at_every_level_verifying_and_proving(runtime: Runtime) -> None:
    """A database whose tree was stored the way before 0007 (every level) upgrades to every sixth level (and,
    by 0010, none of the leaves: they are the events'), and then verifies, serves proofs and takes the next
    checkpoint consistent with the ones before. The way down also shows 0010's downgrade writing level 0
    whole: 0007's hashes every level again from it."""
    signer = new_signer()
    fill(runtime, signer, [70, 300, 4200])  # levels 0 to 12, short blocks at each
    with transaction(runtime.sessions) as s:
        leaves = [bytes.fromhex(h) for h in s.scalars(select(AuditEvent.leaf_hash).order_by(AuditEvent.seq))]
    old = _every_level(leaves)
    cfg = alembic_config()
    with runtime.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
    assert _blocks(runtime) == old  # the shape the earlier code wrote and read
    upgrade(runtime.engine)
    assert _blocks(runtime) == {key: data for key, data in old.items() if key[0] in (6, 12)}
    with transaction(runtime.sessions) as s:
        assert verify_log(s, signer.verifier).ok
        for seq in (1, 64, 65, 4095, 4096, 4200):
            p = checkpoints.event_proof(s, seq)
            assert notes.verify_proof(p.proof, p.leaf, signer.verifier)[1].size == 4200
        assert checkpoints.consistency(s, 300, 4200) == merkle.consistency_proof(300, 4200, leaves)
        append_events(s, [("test.after", f"recording:{n}", {}) for n in range(5000)])
        assert make_checkpoint(s, signer).size == 9200
    with transaction(runtime.sessions) as s:
        assert verify_log(s, signer.verifier).ok


def test_findings_unit_is_not_checked_against_units_again(runtime: Runtime) -> None:
    """0008 drops the foreign key of ``findings.unit_id`` (a copy of a checked unit id, see the migration) on
    both backends, SQLite's unnamed one included, and its downgrade puts it back."""

    def unit_keys() -> list[object]:
        return [fk["referred_table"] for fk in inspect(runtime.engine).get_foreign_keys("findings")]

    assert unit_keys() == []
    cfg = alembic_config()
    with runtime.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0007")
    assert unit_keys() == ["units"]
    upgrade(runtime.engine)
    assert unit_keys() == []


def test_each_migration_is_named_for_its_revision_and_the_newest_is_the_head() -> None:
    """``storage.db.schema_head`` reads the head from the file names: that holds only while every revision id is
    its file's four-digit number and the newest number is Alembic's own head."""
    for path in MIGRATION_FILES.glob("[!_]*.py"):
        found = re.search(r"^revision = ['\"](\w+)['\"]", path.read_text(), re.MULTILINE)
        assert found is not None and found.group(1) == path.name[:4], path.name
    assert schema_head() == ScriptDirectory.from_config(alembic_config()).get_current_head()


@pytest.mark.parametrize(
    ("revision", "words"),
    [("0001", "is at schema revision 0001, this bwc expects"), ("9999", "newer than this bwc knows")],
)
def test_a_database_at_another_revision_is_refused_before_any_work(runtime: Runtime, revision: str, words: str) -> None:
    check_reachable(runtime.engine)  # at the head: nothing to say
    with runtime.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    try:
        with pytest.raises(SchemaMismatch, match=re.escape(words)) as refused:
            check_reachable(runtime.engine)
        assert ("run `bwc init`" in refused.value.message) == (revision == "0001")
    finally:
        with runtime.engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": schema_head()})
