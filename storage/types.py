"""Column types shared by the models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Dialect
from sqlalchemy.types import TypeDecorator

# re-exported: the model and API modules take them from here, beside the column types
from storage.basics import INT32_MAX as INT32_MAX
from storage.basics import INT64_MAX as INT64_MAX
from storage.basics import LEAF_TIME_FORMAT as LEAF_TIME_FORMAT
from storage.basics import iso as iso
from storage.basics import iso_or_none as iso_or_none
from storage.basics import utcnow as utcnow


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
