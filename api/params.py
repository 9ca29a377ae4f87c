"""Query parameters shared by several endpoints."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from audit.csv_rows import BadRow, parse_time
from config.errors import BadInput

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
