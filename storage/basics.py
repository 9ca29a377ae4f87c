"""Integer limits of the columns, the clock and its one ISO 8601 formatter: without SQLAlchemy, unlike
:mod:`storage.types` (which re-exports them).

A module of its own because the station (``bwc watch --server``) uses these and holds no database: importing
SQLAlchemy cost it ~0.5 s of CPU at every start, paid four times by four stations started at once.
"""

from datetime import UTC, datetime

# What integer columns hold, for callers that must refuse a bigger number before it reaches the database:
INT32_MAX = 2**31 - 1  # ``Integer`` (every id, sequence numbers) on PostgreSQL
INT64_MAX = 2**63 - 1  # ``BigInteger``, LIMIT/OFFSET, and any SQLite INTEGER


def utcnow() -> datetime:
    return datetime.now(UTC)


LEAF_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # hashed into audit-log leaves: these bytes must never change


def iso(value: datetime, *, leaf: bool = False) -> str:
    """The one ISO 8601 formatter: UTC with an explicit ``+00:00`` (SPEC §12), or with ``leaf`` the audit log's
    fixed form (always microseconds, ``Z``). A naive value is refused rather than guessed at."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: every stored or printed time is aware UTC")
    value = value.astimezone(UTC)
    return value.strftime(LEAF_TIME_FORMAT) if leaf else value.isoformat()


def iso_or_none(value: datetime | None) -> str | None:
    """:func:`iso`, passing None through (a time not known yet)."""
    return None if value is None else iso(value)
