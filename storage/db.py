"""Engine and session factory; whoever opens a session owns its transaction and commits it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from config.errors import DatabaseUnavailable
from config.settings import mask_text, mask_url, url_secrets

# What a database that cannot be reached, opened or logged into raises (SQLAlchemy wraps the driver's error).
UNREACHABLE = (OperationalError, InterfaceError)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine tuned for the backend: SQLite gets WAL, foreign keys and a long busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy emit BEGIN itself so that BEGIN IMMEDIATE below takes the write lock early.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Writers queue at BEGIN instead of failing later on a lock upgrade.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


def database_unavailable(exc: BaseException, url: str) -> DatabaseUnavailable:
    """One line naming the database and the driver's reason, never its password."""
    orig = getattr(exc, "orig", None) or exc
    reason = next((line.strip() for line in str(orig).splitlines() if line.strip()), type(orig).__name__)
    where = mask_url(url)
    return DatabaseUnavailable(mask_text(f"database {where} unavailable: {reason}", url_secrets(url)))


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """Turn an unreachable database into :class:`DatabaseUnavailable` at the edge of a command or request."""
    try:
        yield
    except UNREACHABLE as exc:
        raise database_unavailable(exc, url) from exc


def check_reachable(engine: Engine) -> None:
    """Connect once, so that a database that is away is one clear error before any work starts."""
    with database_errors(engine.url.render_as_string(hide_password=False)), engine.connect():
        pass
