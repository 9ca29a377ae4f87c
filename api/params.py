"""Parameters shared by several endpoints: ids and counts bounded to what their columns hold, and times.

An integer beyond its column's range is refused here (422) instead of reaching the database, where it would
fail as a 500: SQLite's INTEGER holds 64 bits, PostgreSQL's ``integer`` (our ``Integer`` ids) 32 and its
``bigint`` (``BigInteger`` columns, OFFSET) 64.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Path, Query

from audit.csv_rows import BadRow, parse_time
from config.errors import BadInput
from storage.basics import INT32_MAX, INT64_MAX

# A row id in the path (``/recordings/{recording_id}``): an ``Integer`` primary key.
RowId = Annotated[int, Path(ge=1, le=INT32_MAX, description="row id")]
# A position in a BigInteger sequence (audit events' ``seq``), or a count of rows to skip.
SeqQuery = Annotated[int, Query(ge=0, le=INT64_MAX)]
SeqPath = Annotated[int, Path(ge=1, le=INT64_MAX, description="audit event sequence number")]
OffsetQuery = Annotated[int, Query(ge=0, le=INT64_MAX)]

_DATE_ONLY = re.compile(r"^\s*\d{4}-\d{2}-\d{2}\s*$")


def time_param(value: str | None, tz: ZoneInfo, name: str, *, end: bool = False) -> datetime | None:
    """An ISO 8601 time or date (naive values in BWC_TIMEZONE); a date given as ``end`` means its whole day."""
    if value is None or not value.strip():
        return None
    try:
        instant = parse_time(value, tz, name, date_only=True)
    except BadRow as exc:
        raise BadInput(str(exc)) from exc
    if end and _DATE_ONLY.match(value):
        instant += timedelta(days=1, microseconds=-1)  # inclusive: the last instant of that day
    return instant
