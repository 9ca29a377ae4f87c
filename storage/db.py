"""Engine and session factory; whoever opens a session owns its transaction and commits it."""

from __future__ import annotations

import select
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session, sessionmaker

from config.errors import BwcError, DatabaseUnavailable
from config.settings import mask_text, mask_url, url_secrets

# What a database that cannot be reached, opened or logged into raises (SQLAlchemy wraps the driver's error).
UNREACHABLE = (OperationalError, InterfaceError)

READ_ONLY = "bwc_read_only"  # execution option and Session.info key of a reading transaction
DERIVED = "bwc_derived"  # execution option of a transaction that writes only rows rebuilt if lost
BUSY_MS = 60_000  # how long a SQLite writer waits for the write lock before it gives up
POLL_SECONDS = 0.002


class WriteInReadTransaction(BwcError):
    """A reading transaction tried to write: the code path must use ``transaction()``; nothing was written."""

    code = "write_in_read_transaction"
    status = 500


POOL_OVERFLOW = 10  # connections beyond ``pool_size`` for a burst, each closed again when it is returned


def make_engine(url: str, pool_size: int = 5, **kwargs: Any) -> Engine:
    """An engine tuned for the backend: SQLite gets WAL, foreign keys and a long busy timeout.

    ``pool_size`` is how many PostgreSQL connections stay open for reuse (``Settings.db_pool_size`` for a
    service): SQLAlchemy's 5 under 16 concurrent requests opened and closed ~24 connections a second, and a new
    backend's start-up is what answered slowest on a loaded server (the case lookup's seconds-long stalls).
    SQLite keeps SQLAlchemy's pool: a file opens in microseconds, and one writer at a time is its limit anyway.
    """
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
            cur.execute(f"PRAGMA busy_timeout={BUSY_MS}")
            # 32 MiB of page cache (default 2 MiB): a city's indexes (actions by time, links by device) are
            # written in random order, and a cache smaller than them turns every batch into disk reads
            cur.execute("PRAGMA cache_size=-32768")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Writers queue at BEGIN instead of failing later on a lock upgrade; a reader takes no lock at all
            # (WAL: it reads a snapshot and never waits for a writer or another reader).
            options = conn.get_execution_options()
            if options.get("isolation_level") == "AUTOCOMMIT":  # ``ping``: no transaction at all
                return
            dbapi_conn = conn.connection.dbapi_connection
            _sqlite_synchronous(conn.connection.info, dbapi_conn, "NORMAL" if options.get(DERIVED) else "FULL")
            if options.get(READ_ONLY):
                conn.exec_driver_sql("BEGIN")
            else:
                begin_immediate(dbapi_conn)

        return engine
    engine = create_engine(url, pool_size=pool_size, max_overflow=POOL_OVERFLOW, **kwargs)
    event.listen(engine, "checkout", _closed_by_server)
    return engine


def make_reading_engine(url: str, pool_size: int = 5) -> Engine | None:
    """The engine of :func:`reading` on PostgreSQL, a pool of its own; None for SQLite (one engine reads there).

    Its connections run each statement in autocommit on a server session that refuses writes
    (``default_transaction_read_only``): no ``BEGIN READ ONLY`` and ``COMMIT`` round trips around a read request
    (api9's profile: 6 % and 12 % of the case lookup's worker thread), and PostgreSQL still refuses any write.
    Under READ COMMITTED (the project's level, never raised) a statement takes its own snapshot inside a
    transaction as well as outside one, so the reads see the same data.
    """
    if url.startswith("sqlite"):
        return None
    engine = make_engine(url, pool_size=pool_size, isolation_level="AUTOCOMMIT")
    event.listen(engine, "connect", _refuse_writes_on_this_connection)
    return engine


def _refuse_writes_on_this_connection(dbapi_conn: Any, _record: Any) -> None:
    """Once per new connection of the reading pool, before it is used: every transaction of the server session,
    each autocommitted statement's too, is read-only from now on (a write fails with ``read-only transaction``).
    A ``SET`` rather than the connection's ``options``, which would replace what the URL or ``PGOPTIONS`` sets."""
    cur = dbapi_conn.cursor()  # a DB-API cursor, not psycopg's ``Connection.execute``: any driver does
    cur.execute("SET default_transaction_read_only = on")
    cur.close()
    if not dbapi_conn.autocommit:  # the SET opened a transaction: it must be committed to last
        dbapi_conn.commit()


def _closed_by_server(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
    """What ``pool_pre_ping`` was for, without its round trip: a pooled PostgreSQL connection the server has
    closed (a restart, ``pg_terminate_backend``, ``idle_session_timeout``) is replaced before it is used.

    An idle connection's socket has nothing to read unless the server sent something: its last words (``FATAL:
    terminating connection``) and the end of the stream. So a readable socket, or one psycopg already knows is
    closed, makes the pool discard the connection and check out another (``DisconnectionError``), as a failed
    ping did. The ping's ``SELECT 1`` was a seventh of the case lookup's round trips; this is one ``poll``.
    """
    if dbapi_conn.closed or dbapi_conn.broken:
        raise DisconnectionError("the connection is closed")
    idle = select.poll()  # poll, not select: a busy service's descriptors may be numbered past select's 1024
    idle.register(dbapi_conn.fileno(), select.POLLIN)
    if idle.poll(0):  # readable, or hung up / in error (poll always reports those)
        raise DisconnectionError("the server closed the connection, or sent what an idle one never gets")


def _sqlite_synchronous(info: dict[Any, Any], dbapi_conn: sqlite3.Connection, level: str) -> None:
    """Set the connection's ``synchronous`` before its BEGIN (SQLite refuses to change it inside a
    transaction), only when it differs from what the connection has: FULL for every transaction but a
    :func:`derived_transaction`'s, whose commit then does not wait for the disk."""
    if info.get("synchronous", "FULL") != level:
        dbapi_conn.execute(f"PRAGMA synchronous={level}")
        info["synchronous"] = level


def begin_immediate(dbapi_conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, tried every few milliseconds until the write lock is free (at most ``BUSY_MS``).

    SQLite's own busy handler backs off to 100 ms between tries, so a writer that commits and begins again
    at once (a full recompute's batches) would keep the lock for its whole run; a brisk poll gets into the
    gaps between its transactions.
    """
    cur = dbapi_conn.cursor()
    deadline = time.monotonic() + BUSY_MS / 1000
    try:
        cur.execute("PRAGMA busy_timeout=0")
        while True:
            try:
                cur.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(POLL_SECONDS)
    finally:
        cur.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        cur.close()


class Sessions(sessionmaker[Session]):
    """Sessions on the engine that writes; :func:`reading` opens its sessions on ``reader`` when there is one (the
    PostgreSQL reading pool, :func:`make_reading_engine`). Whoever made the engines disposes them
    (``Runtime.close``), not this factory."""

    def __init__(self, engine: Engine, reader: Engine | None = None) -> None:
        super().__init__(engine, expire_on_commit=False)
        self.reader = reader


def make_session_factory(engine: Engine, reader: Engine | None = None) -> Sessions:
    return Sessions(engine, reader)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work that may write: commit on success, roll back on any error (SQLite: BEGIN IMMEDIATE)."""
    with factory() as session, session.begin():
        yield session


@contextmanager
def derived_transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work that writes only rows derived from durable ones and rebuilt from them if lost (the audit
    checkpoints, ``audit.checkpoints``): it commits without waiting for the disk. SQLite: ``synchronous=NORMAL``
    for this transaction (WAL: a power cut may lose the last such commits, never corrupt the database);
    PostgreSQL: ``synchronous_commit = off`` (a crash may lose the last such commits). In both the log of
    commits is one sequence, so what is lost is a tail with nothing durable after it. Never for other writes.
    """
    with factory() as session, session.begin():
        options: dict[str, Any] = {DERIVED: True}
        conn = session.connection(execution_options=options)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
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


class SchemaMismatch(BwcError):
    """The database's schema is not the one this code was written for: one clear error before any work, instead
    of a missing column half-way through an ingest."""

    code = "schema_mismatch"
    status = 503


MIGRATION_FILES = Path(__file__).parent / "migrations" / "versions"


def schema_head() -> str:
    """The revision this code expects: the newest migration's number (a file ``NNNN_what.py`` has revision id
    ``NNNN``, which ``tests/storage/test_migrations.py`` holds to). Read from the file names, so no migration
    has a constant to bump and no command imports Alembic to know it."""
    return max(p.name[:4] for p in MIGRATION_FILES.glob("[0-9][0-9][0-9][0-9]_*.py"))


def check_reachable(engine: Engine) -> None:
    """Connect once and read the schema's revision, so that a database that is away, was never set up, or is at
    another revision than this code is one clear error before any work starts (one query)."""
    with database_errors(engine.url.render_as_string(hide_password=False)), engine.connect() as conn:
        try:
            found = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        except (OperationalError, ProgrammingError) as exc:
            if "alembic_version" not in str(exc):  # not "no such table": the database's own trouble
                raise
            found = None
    expected = schema_head()
    if found == expected:
        return
    where = mask_url(engine.url.render_as_string(hide_password=False))
    if found is None:
        raise SchemaMismatch(f"database {where} has no BWC schema yet: run `bwc init`")
    if found < expected:
        raise SchemaMismatch(
            f"database {where} is at schema revision {found}, this bwc expects {expected}: "
            "run `bwc init` (it migrates, keeping every row)"
        )
    raise SchemaMismatch(
        f"database {where} is at schema revision {found}, newer than this bwc knows ({expected}): "
        "upgrade bwc on this machine"
    )


def ping(engine: Engine) -> None:
    """Prove the database answers with the least work: one ``SELECT 1`` in autocommit, so no BEGIN and COMMIT
    around it (``/healthz``, which load balancers call often)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("SELECT 1")


@contextmanager
def reading(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A unit of work that only reads: it neither waits for writers nor makes them wait (SQLite: plain BEGIN).

    A flush of pending changes raises :class:`WriteInReadTransaction`; PostgreSQL refuses any other write. With
    a reading pool (``Sessions.reader``, PostgreSQL) its statements run in autocommit on connections whose server
    session refuses writes: no BEGIN and COMMIT round trips. Without one it reads in a ``BEGIN READ ONLY``.
    """
    reader = factory.reader if isinstance(factory, Sessions) else None
    if reader is not None:
        with factory(bind=reader) as session:
            session.info[READ_ONLY] = True
            with session.begin():  # no BEGIN on the wire: psycopg sends none in autocommit, nor a COMMIT
                yield session
        return
    with factory() as session:
        session.info[READ_ONLY] = True
        with session.begin():
            options: dict[str, Any] = {READ_ONLY: True}
            if session.get_bind().dialect.name == "postgresql":
                # psycopg then begins with BEGIN READ ONLY itself (and SQLAlchemy resets the connection when
                # it goes back to the pool): one round trip fewer than a SET TRANSACTION on every read request
                options["postgresql_readonly"] = True
            session.connection(execution_options=options)
            yield session


@event.listens_for(Session, "before_flush")
def _refuse_writes_when_reading(session: Session, _ctx: Any, _instances: Any) -> None:
    if session.info.get(READ_ONLY) and (session.new or session.dirty or session.deleted):
        raise WriteInReadTransaction("a reading transaction cannot write; nothing was written")
