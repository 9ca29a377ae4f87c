"""The migrations build exactly the schema the models describe, and ``bwc init`` is safe to re-run."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from storage.migrate import alembic_config, upgrade
from storage.models import Base
from storage.runtime import Runtime


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


def test_findings_unit_is_not_checked_against_units_again(runtime: Runtime) -> None:
    """0007 drops the foreign key of ``findings.unit_id`` (a copy of a checked unit id, see the migration) on
    both backends, SQLite's unnamed one included, and its downgrade puts it back."""

    def unit_keys() -> list[object]:
        return [fk["referred_table"] for fk in inspect(runtime.engine).get_foreign_keys("findings")]

    assert unit_keys() == []
    cfg = alembic_config()
    with runtime.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
    assert unit_keys() == ["units"]
    upgrade(runtime.engine)
    assert unit_keys() == []
