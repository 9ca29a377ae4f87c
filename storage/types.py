"""Column types shared by the models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect
from sqlalchemy.types import TypeDecorator

# What integer columns hold, for callers that must refuse a bigger number before it reaches the database:
INT32_MAX = 2**31 - 1  # ``Integer`` (every id, sequence numbers) on PostgreSQL
INT64_MAX = 2**63 - 1  # ``BigInteger``, LIMIT/OFFSET, and any SQLite INTEGER


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend; a naive value is refused rather than guessed at."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


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
