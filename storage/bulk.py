"""Bulk writes of plain rows in the session's transaction: one statement per batch, not one per row.

A full coverage recompute writes hundreds of thousands of links and events in one transaction; psycopg's
executemany costs about three times what ``COPY ... FROM STDIN`` does per row, and SQLAlchemy's per-row
parameter handling costs more than SQLite's own insert. So: PostgreSQL gets ``COPY`` and set-based
statements, SQLite the driver's executemany on values the column types have already converted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Table, bindparam, delete, insert, text, update
from sqlalchemy.orm import Session


def pg_cursor(session: Session) -> Any | None:
    """A psycopg 3 cursor on the session's own connection (same transaction), or None off PostgreSQL."""
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        return None
    raw = conn.connection.driver_connection
    cursor = raw.cursor() if raw is not None else None
    if cursor is None or not hasattr(cursor, "copy"):  # another driver than psycopg 3
        return None
    return cursor


def table_of(model: type[Any]) -> Table:
    """The ``Table`` behind a declarative model (typed as ``FromClause`` by SQLAlchemy, a ``Table`` at run time)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def insert_rows(
    session: Session,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    pg_types: Sequence[str] = (),
) -> int:
    """Insert ``rows`` (tuples in the order of ``columns``) into ``table``.

    On PostgreSQL the values go to ``COPY`` as they are: only for columns whose Python values psycopg adapts
    by itself (numbers, text, booleans, aware datetimes), not JSON. With ``pg_types`` (the columns' PostgreSQL
    types, e.g. ``int8``) the COPY is binary: for bytea it saves writing and parsing every byte as hex.
    """
    if not rows:
        return 0
    cursor = pg_cursor(session)
    if cursor is not None:
        quoted = ", ".join(f'"{c}"' for c in columns)
        binary = " (FORMAT BINARY)" if pg_types else ""
        with cursor, cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN{binary}') as copy:
            if pg_types:
                copy.set_types(list(pg_types))
            write = copy.write_row
            for row in rows:
                write(row)
        return len(rows)
    conn = session.connection()
    if conn.dialect.name != "sqlite":
        conn.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])
        return len(rows)
    # SQLite: the column types' own bind processors, then the driver's executemany on plain tuples; the
    # per-row parameter handling of a Core executemany costs more than SQLite's insert itself.
    processors = [_repeating(table.c[c].type._cached_bind_processor(conn.dialect)) for c in columns]
    converting = [(i, p) for i, p in enumerate(processors) if p is not None]
    if converting:
        converted = []
        for row in rows:
            values = list(row)
            for i, process in converting:
                values[i] = process(values[i])
            converted.append(tuple(values))
        rows = converted
    quoted = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(f'INSERT INTO "{table.name}" ({quoted}) VALUES ({marks})', list(rows))
    return len(rows)


def _repeating(process: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    """``process`` remembering its last value: a batch's rows share one time (``now``) in a column or two, and
    converting a datetime costs more than the insert of its row."""
    if process is None:
        return None
    last: list[Any] = [_UNSET, None]

    def convert(value: Any) -> Any:
        if value is not last[0]:
            last[0], last[1] = value, process(value)
        return last[1]

    return convert


_UNSET = object()


def update_rows(session: Session, table: Table, key: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    """Set ``columns`` of the rows whose ``key`` is each tuple's first value: ``(key, *values)`` tuples.

    PostgreSQL: one ``UPDATE ... FROM json_to_recordset(document)`` statement; elsewhere the driver's executemany.
    """
    if not rows:
        return 0
    conn = session.connection()
    dialect = conn.dialect
    names = (key, *columns)
    if dialect.name == "postgresql":
        # The rows travel as one JSON document (json.dumps is C; per-value array adaptation is not).
        json_columns = {i for i, n in enumerate(names) if isinstance(table.c[n].type, JSON)}
        doc = [
            {
                str(i): v if i in json_columns or not isinstance(v, datetime) else v.isoformat()
                for i, v in enumerate(row)
            }
            for row in rows
        ]
        types = ", ".join(
            f'"{i}" {"json" if i in json_columns else table.c[n].type.compile(dialect)}' for i, n in enumerate(names)
        )
        sets = ", ".join(f'"{c}" = v."{i + 1}"' for i, c in enumerate(columns))
        sql = (
            f'UPDATE "{table.name}" AS t SET {sets} FROM json_to_recordset(CAST(:doc AS json)) AS v({types}) '
            f'WHERE t."{key}" = v."0"'
        )
        conn.execute(text(sql), {"doc": json.dumps(doc)})
        return len(rows)
    if dialect.name != "sqlite":
        stmt = update(table).where(table.c[key] == bindparam("_key")).values({c: bindparam(c) for c in columns})
        conn.execute(stmt, [{"_key": row[0], **dict(zip(columns, row[1:], strict=True))} for row in rows])
        return len(rows)
    processors = [_repeating(table.c[n].type._cached_bind_processor(dialect)) for n in names]
    params = []
    for row in rows:
        values = [v if p is None else p(v) for v, p in zip(row, processors, strict=True)]
        params.append((*values[1:], values[0]))
    sets = ", ".join(f'"{c}" = ?' for c in columns)
    conn.exec_driver_sql(f'UPDATE "{table.name}" SET {sets} WHERE "{key}" = ?', params)
    return len(rows)


def delete_pairs(session: Session, table: Table, columns: tuple[str, str], pairs: Sequence[tuple[Any, Any]]) -> int:
    """Delete the rows whose two ``columns`` (integer keys) match one of ``pairs``, with one statement."""
    if not pairs:
        return 0
    conn = session.connection()
    a, b = columns
    if conn.dialect.name == "postgresql":
        conn.execute(
            text(
                f'DELETE FROM "{table.name}" AS t USING unnest(CAST(:a AS BIGINT[]), CAST(:b AS BIGINT[])) '
                f'AS v(a, b) WHERE t."{a}" = v.a AND t."{b}" = v.b'
            ),
            {"a": [p[0] for p in pairs], "b": [p[1] for p in pairs]},
        )
    else:
        stmt = delete(table).where(table.c[a] == bindparam("_a"), table.c[b] == bindparam("_b"))
        conn.execute(stmt, [{"_a": x, "_b": y} for x, y in pairs])
    return len(pairs)
