"""Office CSV exports: rows, their faults and field values (SPEC §6); the stream itself is :mod:`audit.csv_source`.

Pure functions over strings; nothing here touches the database.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from config.errors import BadInput

# 2024-05-01 08:00, 2024-05-01T08:00:00+08:00, 2024/5/1 8:00:05, 2024-05-01 08:00:00.5Z
_TIME = re.compile(
    r"^(?P<y>\d{4})[-/.](?P<mo>\d{1,2})[-/.](?P<d>\d{1,2})"
    r"(?:[ T]+(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,6}))?)?)?"
    r"\s*(?P<tz>Z|[+-]\d{2}(?::?\d{2})?)?$",
    re.IGNORECASE,
)

_TRUE = {"true", "1", "yes", "y", "是", "t", "certified", "正式", "民警", "执法人员"}
_FALSE = {"false", "0", "no", "n", "否", "f", "auxiliary", "协管", "协管员", "协管人员", "辅警"}


class BadRow(BadInput):
    """One bad value in one row; the importer reports it with the row's line number."""

    code = "bad_row"


class FileError(BadInput):
    """The file as a whole cannot be read (encoding, header): nothing is imported."""

    code = "bad_file"


@dataclass(frozen=True)
class Row:
    line: int  # physical line where the record starts; the header is line 1
    values: dict[str, str | None]


@dataclass(frozen=True)
class RowFault:
    line: int
    reason: str


def parse_time(value: str, tz: ZoneInfo, field: str, *, date_only: bool = False) -> datetime:
    """An aware UTC time; a naive value is read in ``tz`` (BWC_TIMEZONE), an explicit offset is honoured."""
    m = _TIME.match(value.strip())
    if m is None or (m["h"] is None and not date_only):
        raise BadRow(f"{field}: cannot read time {value!r} (use YYYY-MM-DD HH:MM[:SS], optionally with an offset)")
    try:
        local = datetime(
            int(m["y"]),
            int(m["mo"]),
            int(m["d"]),
            int(m["h"] or 0),
            int(m["mi"] or 0),
            int(m["s"] or 0),
            int((m["f"] or "0").ljust(6, "0")),
        )
    except ValueError as exc:
        raise BadRow(f"{field}: impossible time {value!r}: {exc}") from exc
    zone: tzinfo = _offset(m["tz"]) if m["tz"] else tz
    return local.replace(tzinfo=zone).astimezone(UTC)


def _offset(text: str) -> tzinfo:
    if text.upper() == "Z":
        return UTC
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise BadRow(f"impossible UTC offset {text!r}")
    sign = -1 if text[0] == "-" else 1
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def parse_bool(value: str, field: str) -> bool:
    """true/false, 1/0, 是/否, yes/no; 协管 (auxiliary staff) reads as not certified."""
    key = value.strip().lower()
    if key in _TRUE:
        return True
    if key in _FALSE:
        return False
    raise BadRow(f"{field}: cannot read {value!r} as true/false (true/false, 1/0, 是/否, yes/no, 协管)")


def parse_float(value: str, field: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise BadRow(f"{field}: {value!r} is not a number") from None
    if not math.isfinite(number):
        raise BadRow(f"{field}: {value!r} is not a finite number")
    return number


def split_list(value: str | None) -> list[str]:
    """A ``;``-separated list (a full-width ``；`` too), blanks dropped, order kept, repeats removed."""
    if not value:
        return []
    items = [v.strip() for v in re.split(r"[;；]", value)]
    return list(dict.fromkeys(v for v in items if v))


def check_length(value: str | None, field: str, limit: int) -> str | None:
    if value is not None and len(value) > limit:
        raise BadRow(f"{field}: longer than {limit} characters")
    return value
