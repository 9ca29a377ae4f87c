"""The wired parts of a running service: settings, database, object store."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from storage.db import make_engine, make_session_factory
from storage.objects import ObjectStore, open_store


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    store: ObjectStore

    def close(self) -> None:
        self.engine.dispose()


def build_runtime(settings: Settings) -> Runtime:
    """Connect to what the settings name; creates nothing (that is ``bwc init``)."""
    engine = make_engine(settings.db_url, pool_size=settings.db_pool_size)
    return Runtime(settings, engine, make_session_factory(engine), open_store(settings.store_url))
