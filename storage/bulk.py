"""Bulk writes of plain rows in the session's transaction: one statement per batch, not one per row.

A full coverage recompute writes hundreds of thousands of links and events in one transaction; psycopg's
executemany costs about three times what ``COPY ... FROM STDIN`` does per row, and SQLAlchemy's per-row
parameter handling costs more than SQLite's own insert. So: PostgreSQL gets ``COPY`` and set-based
statements, SQLite the driver's executemany on values the column types have already converted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Table, bindparam, delete, func, insert, select, text, update
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
    types, e.g. ``int8``) the COPY is binary: for bytea it saves writing and parsing every byte as hex, for
    times and numbers their text; there a ``json`` column takes Python values (None: SQL NULL), serialized
    as SQLAlchemy's JSON type would.
    """
    if not rows:
        return 0
    cursor = pg_cursor(session)
    if cursor is not None:
        quoted = ", ".join(f'"{c}"' for c in columns)
        binary = " (FORMAT BINARY)" if pg_types else ""
        if pg_types and len(pg_types) != len(columns):
            raise ValueError(f"{len(pg_types)} PostgreSQL types for {len(columns)} columns of {table.name}")
        json_at = [i for i, t in enumerate(pg_types) if t == "json"]
        if json_at:
            rows = _json_as_text(rows, json_at)
        with cursor, cursor.copy(f'COPY "{table.name}" ({quoted}) FROM STDIN{binary}') as copy:
            if pg_types:
                # json's binary form is its text (json_recv): sent as text, no second serialization by psycopg
                copy.set_types(["text" if t == "json" else t for t in pg_types])
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


def _json_as_text(rows: Sequence[Sequence[Any]], json_at: Sequence[int]) -> list[Sequence[Any]]:
    # the JSON columns' values as JSON text, each distinct object serialized once when rows share it (a
    # batch's findings share their first history line and their empty details)
    dumps = [_repeating(_json_text) or _json_text for _ in json_at]
    converted: list[Sequence[Any]] = []
    for row in rows:
        values = list(row)
        for i, dump in zip(json_at, dumps, strict=True):
            values[i] = dump(values[i])
        converted.append(values)
    return converted


def _json_text(value: Any) -> str | None:
    # json.dumps with its defaults, as SQLAlchemy's JSON type binds a value on both backends
    return None if value is None else json.dumps(value)


def reserve_ids(session: Session, table: Table, count: int) -> list[int]:
    """``count`` fresh values of ``table``'s integer primary key ``id``, for rows the caller inserts with them.

    In ascending order. Ids known before the insert let it be a binary ``COPY`` with no ``RETURNING``, and the
    caller need not read its rows back to learn them. PostgreSQL: drawn from the column's own sequence, so the
    ORM's inserts beside keep getting others. SQLite: the ``count`` after the largest, which is what SQLite
    would assign a table without AUTOINCREMENT; every writing transaction holds the database's write lock
    from BEGIN IMMEDIATE (``storage.db``), so no other writer takes them before the caller's insert.
    """
    if count <= 0:
        return []
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        # one row, not one a value: fetching 187 rows cost more than drawing the values
        sequence = "(SELECT pg_get_serial_sequence(:table, 'id'))"
        sql = f"SELECT string_agg(nextval({sequence})::text, ',') FROM generate_series(1, :n)"
        drawn = conn.execute(text(sql), {"table": f'"{table.name}"', "n": count}).scalar_one()
        return sorted(int(v) for v in drawn.split(","))
    last = conn.execute(select(func.max(table.c.id))).scalar() or 0
    return list(range(last + 1, last + 1 + count))


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


def _plain(type_: Any) -> bool:
    """A column type whose values never are datetimes (numbers, text, booleans): nothing to convert."""
    try:
        return type_.python_type in (int, float, str, bool)
    except NotImplementedError:  # e.g. a TypeDecorator without its own python_type, such as UTCDateTime
        return False


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
        rs = _recordset(table, names, rows, dialect)
        sets = ", ".join(f'"{c}" = {rs.values[i + 1]}' for i, c in enumerate(columns))
        sql = f'UPDATE "{table.name}" AS t SET {sets} FROM {rs.record} WHERE t."{key}" = {rs.values[0]}'
        conn.execute(text(sql), rs.params)
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


@dataclass(frozen=True)
class _Recordset:
    """Rows for one statement: the SQL expression of each column, read from ``v`` (a ``json_to_recordset`` of
    the document) or, for a value every row shares, from a parameter of its own; and the parameters."""

    values: list[str]
    record: str
    params: dict[str, Any]


def _recordset(table: Table, names: Sequence[str], rows: Sequence[Sequence[Any]], dialect: Any) -> _Recordset:
    # The rows as one JSON document for json_to_recordset (json.dumps is C; per-value array adaptation is not),
    # keyed by column position: JSON columns as json, times as ISO. A value every row holds (the same object:
    # ``now``, a finding's first history line, None) is sent once, not parsed again for every row; the first
    # column (a key) always travels in the document, which needs one.
    width = len(names)
    first = rows[0]
    shared = {i for i in range(1, width) if all(row[i] is first[i] for row in rows)}
    json_columns = {i for i, n in enumerate(names) if isinstance(table.c[n].type, JSON)}
    sql_type = {i: "json" if i in json_columns else table.c[n].type.compile(dialect) for i, n in enumerate(names)}
    params: dict[str, Any] = {}
    values: list[str] = []
    for i in range(width):
        if i in shared:
            value = first[i]
            params[f"s{i}"] = json.dumps(value) if i in json_columns and value is not None else value
            values.append(f"CAST(:s{i} AS {sql_type[i]})")
        else:
            values.append(f'v."{i}"')
    travelling = [i for i in range(width) if i not in shared]
    keys = [str(i) for i in travelling]
    doc = [dict(zip(keys, [row[i] for i in travelling], strict=True)) for row in rows]
    seen: dict[int, str] = {}
    for i, key in zip(travelling, keys, strict=True):
        if i in json_columns or _plain(table.c[names[i]].type):
            continue
        for fields in doc:
            value = fields[key]
            if isinstance(value, datetime):
                # a batch's rows share a few time objects (a deadline per kind): each converted once, keyed by
                # identity (equal instants in other zones print differently; the rows keep them alive)
                text_of = seen.get(id(value))
                if text_of is None:
                    text_of = seen[id(value)] = value.isoformat()
                fields[key] = text_of
    params["doc"] = json.dumps(doc)
    record = ", ".join(f'"{i}" {sql_type[i]}' for i in travelling)
    return _Recordset(values, f"json_to_recordset(CAST(:doc AS json)) AS v({record})", params)


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
