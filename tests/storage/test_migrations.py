"""The migrations build exactly the schema the models describe, and ``bwc init`` is safe to re-run."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from storage.migrate import upgrade
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
