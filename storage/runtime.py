"""The wired parts of a running service: settings, database, object store."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from storage.db import make_engine, make_reading_engine, make_session_factory
from storage.objects import ObjectStore, open_store


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: ObjectStore
    # ``storage.db.reading``'s pool on PostgreSQL (``sessions`` hands it to ``reading``), owned and closed here;
    # None for SQLite, and for a Runtime that borrows another's engines (which that one closes)
    reader: Engine | None = None

    def close(self) -> None:
        self.engine.dispose()
        if self.reader is not None:
            self.reader.dispose()


def build_runtime(settings: Settings) -> Runtime:
    """Connect to what the settings name; creates nothing (that is ``bwc init``). Both engines open their
    connections only when first used, each pool ``db_pool_size`` connections kept for reuse."""
    engine = make_engine(settings.db_url, pool_size=settings.db_pool_size)
    reader = make_reading_engine(settings.db_url, pool_size=settings.db_pool_size)
    sessions = make_session_factory(engine, reader)
    return Runtime(settings, engine, sessions, open_store(settings.store_url), reader)
