"""Reading and writing transactions: readers never wait, writers queue at BEGIN (real SQLite file, PostgreSQL)."""

from __future__ import annotations

import sqlite3
import tempfile
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from psycopg import pq
from psycopg.pq import TransactionStatus
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from config.settings import Settings
from storage.db import WriteInReadTransaction, make_engine, make_session_factory, reading, transaction
from storage.models import Unit
from storage.runtime import Runtime, build_runtime

WAIT = 30.0  # an upper bound for an Event that is set at once when the code is right


@pytest.fixture
def sqlite_file(tmp_path: Path) -> str:
    path = tmp_path / "rw.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.exec_driver_sql("INSERT INTO t VALUES (1)")
    engine.dispose()
    return str(path)


def count(session: object) -> int:
    return int(session.execute(text("SELECT count(*) FROM t")).scalar_one())  # type: ignore[attr-defined]


def test_a_second_reader_and_a_writer_go_ahead_while_a_reader_holds_its_transaction(sqlite_file: str) -> None:
    engine = make_engine(f"sqlite:///{sqlite_file}")
    factory = make_session_factory(engine)
    first_open, release = threading.Event(), threading.Event()
    seen: dict[str, int] = {}

    def first_reader() -> None:
        with reading(factory) as s:
            seen["first"] = count(s)
            first_open.set()
            release.wait(WAIT)
            seen["first_again"] = count(s)  # its snapshot holds while it is open

    thread = threading.Thread(target=first_reader)
    thread.start()
    try:
        assert first_open.wait(WAIT)
        with reading(factory) as s:  # before: BEGIN IMMEDIATE, and this waited for the first to close
            seen["second"] = count(s)
        with transaction(factory) as s:  # a writer still gets the lock beside an open reader (WAL)
            s.execute(text("INSERT INTO t VALUES (2)"))
        assert thread.is_alive() and not release.is_set()  # all of the above ran while the first was open
    finally:
        release.set()
        thread.join(WAIT)
    assert seen == {"first": 1, "second": 1, "first_again": 1}
    with reading(factory) as s:
        assert count(s) == 2
    engine.dispose()


def test_a_writer_holds_the_write_lock_from_begin_a_reader_takes_none(sqlite_file: str) -> None:
    engine = make_engine(f"sqlite:///{sqlite_file}")
    factory = make_session_factory(engine)
    other = sqlite3.connect(sqlite_file, timeout=0, isolation_level=None)
    try:
        with transaction(factory) as s:
            count(s)  # a read only: BEGIN IMMEDIATE has taken the lock all the same, so writers queue at BEGIN
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        with reading(factory) as s:
            count(s)
            other.execute("BEGIN IMMEDIATE")  # a reader leaves the write lock free
            other.execute("INSERT INTO t VALUES (3)")
            other.execute("COMMIT")
            assert count(s) == 1  # and reads its own snapshot
    finally:
        other.close()
        engine.dispose()


def test_writers_queue_at_begin_instead_of_failing(sqlite_file: str) -> None:
    engine = make_engine(f"sqlite:///{sqlite_file}")
    factory = make_session_factory(engine)
    second_started, errors = threading.Event(), []

    def second_writer() -> None:
        second_started.set()
        try:
            with transaction(factory) as s:
                s.execute(text("INSERT INTO t SELECT max(x) + 10 FROM t"))
        except Exception as exc:  # the test reports it below
            errors.append(exc)

    with transaction(factory) as s:
        s.execute(text("INSERT INTO t VALUES (2)"))
        thread = threading.Thread(target=second_writer)
        thread.start()
        assert second_started.wait(WAIT)
    thread.join(WAIT)
    assert errors == []
    with reading(factory) as s:
        assert sorted(s.scalars(text("SELECT x FROM t"))) == [1, 2, 12]  # the second read what the first wrote
    engine.dispose()


def test_a_reading_transaction_refuses_to_write_and_writes_nothing(runtime: Runtime) -> None:
    with pytest.raises(WriteInReadTransaction), reading(runtime.sessions) as s:
        s.add(Unit(code="U-READ"))
        s.flush()
    if runtime.engine.dialect.name == "postgresql":  # the database itself refuses what bypasses the ORM
        with pytest.raises(DBAPIError, match="read-only"), reading(runtime.sessions) as s:
            s.execute(text("INSERT INTO units (code) VALUES ('U-RAW')"))
    with reading(runtime.sessions) as s:
        assert list(s.scalars(select(Unit.code))) == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_write_through_reading_on_postgresql_is_refused_by_the_server_with_no_transaction_open(
    runtime: Runtime,
) -> None:
    # The reading pool sends no BEGIN READ ONLY and no COMMIT: each statement commits itself (autocommit), and
    # what refuses a write that bypasses the ORM's guard is the server session's default_transaction_read_only.
    with reading(runtime.sessions) as s:
        raw = s.connection().connection.dbapi_connection
        assert raw is not None
        assert s.execute(text("SELECT count(*) FROM units")).scalar_one() == 0
        assert raw.info.transaction_status == TransactionStatus.IDLE  # no transaction open after a read
        with pytest.raises(DBAPIError, match="read-only transaction"):
            s.execute(text("INSERT INTO units (code) VALUES ('U-RAW')"))
        with pytest.raises(DBAPIError, match="read-only transaction"):
            s.execute(text("CREATE TABLE bwc_read_only_probe (x integer)"))
        assert raw.info.transaction_status == TransactionStatus.IDLE  # none left open (or aborted) by the refusals
        assert s.execute(text("SELECT count(*) FROM units")).scalar_one() == 0
    with transaction(runtime.sessions) as s:  # the writing pool writes (in a transaction, as ever)
        s.execute(text("INSERT INTO units (code) VALUES ('U-WRITTEN')"))
    with reading(runtime.sessions) as s:
        assert list(s.scalars(select(Unit.code))) == ["U-WRITTEN"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_reading_session_on_postgresql_sends_its_statements_and_nothing_else(runtime: Runtime) -> None:
    # libpq's protocol trace of the connection from the first statement to after the session has given it back:
    # one ReadyForQuery per round trip, and no BEGIN or COMMIT among the queries (they were 2 of the case
    # lookup's 5 round trips)
    with tempfile.TemporaryFile() as trace:
        with reading(runtime.sessions) as s:
            raw = s.connection().connection.dbapi_connection
            assert raw is not None
            raw.pgconn.trace(trace.fileno())
            raw.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
            assert s.execute(text("SELECT count(*) FROM units")).scalar_one() == 0
            assert s.execute(text("SELECT count(*) FROM officers")).scalar_one() == 0
        raw.pgconn.untrace()
        trace.seek(0)
        lines = trace.read().decode().splitlines()
    assert len([line for line in lines if "\tReadyForQuery" in line]) == 2, lines
    sent = " ".join(line for line in lines if line.startswith("F\t")).upper()
    assert "BEGIN" not in sent and "COMMIT" not in sent and "ROLLBACK" not in sent, sent


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite keeps SQLAlchemy's own pool
def test_a_service_keeps_as_many_postgresql_connections_open_as_its_pool_size(runtime: Runtime) -> None:
    # A request past SQLAlchemy's default 5 would open a new connection (a PostgreSQL backend forked for it) and
    # close it on return; with BWC_DB_POOL_SIZE every one of that many concurrent users comes back to the same,
    # in the writing pool and in the reading one alike.
    assert runtime.engine.dialect.name == "postgresql" and runtime.reader is not None
    size = runtime.settings.db_pool_size
    assert size > 5

    for engine in (runtime.engine, runtime.reader):
        first = _backends(engine, size)
        assert len(first) == size
        assert _backends(engine, size) == first
        engine.dispose()  # one pool's backends at a time on a server the suite shares: closed before the next


def _backends(engine: Engine, count: int) -> set[int]:
    """The server processes behind ``count`` connections held at once, all given back afterwards."""
    conns = [engine.connect() for _ in range(count)]
    try:
        return {c.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() for c in conns}
    finally:
        for c in conns:
            c.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite: one engine, as before
def test_closing_a_runtime_closes_the_connections_of_both_its_pools(settings: Settings) -> None:
    # Runtime.close is where every service, command and test fixture lets go of the database (a test database is
    # dropped after the session): the reading pool's connections must not outlive it.
    rt = build_runtime(settings)
    with reading(rt.sessions) as s:
        read = s.connection().connection.dbapi_connection
    with transaction(rt.sessions) as s:
        write = s.connection().connection.dbapi_connection
    assert read is not None and write is not None and read is not write
    assert not read.closed and not write.closed  # each kept in its pool for the next request
    rt.close()
    assert read.closed and write.closed


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite: a file, no server to go away
@pytest.mark.parametrize("unit", [reading, transaction])  # the reading pool and the writing one
def test_a_pooled_connection_the_server_closed_is_replaced_before_a_request_uses_it(
    runtime: Runtime, unit: Callable[[sessionmaker[Session]], AbstractContextManager[Session]]
) -> None:
    # Without pool_pre_ping's SELECT 1 on every checkout, a connection PostgreSQL terminated while it sat in the
    # pool (a restart, pg_terminate_backend) must still never reach a request: the checkout sees the closed
    # socket and the pool opens another, so the request answers as if nothing had happened.
    with unit(runtime.sessions) as s:
        killed = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
    admin = make_engine(runtime.engine.url.render_as_string(hide_password=False))  # not the pool under test
    try:
        with admin.connect() as other:
            # the 5 s form waits until the backend has exited (its FATAL sent, its socket closed)
            assert other.exec_driver_sql(f"SELECT pg_terminate_backend({int(killed)}, 5000)").scalar_one() is True
    finally:
        admin.dispose()
    with unit(runtime.sessions) as s:
        assert s.execute(text("SELECT 1")).scalar_one() == 1
        assert s.execute(text("SELECT pg_backend_pid()")).scalar_one() != killed
    with unit(runtime.sessions) as s:  # a live pooled connection is kept, not replaced
        again = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with unit(runtime.sessions) as s:
        assert s.execute(text("SELECT pg_backend_pid()")).scalar_one() == again
