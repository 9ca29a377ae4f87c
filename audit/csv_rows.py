"""Reading office CSV exports: encodings, header checks, physical line numbers and field values (SPEC §6).

Pure functions over bytes and strings; nothing here touches the database.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

from config.errors import BadInput

UTF8_BOM = b"\xef\xbb\xbf"

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


def decode(data: bytes) -> str:
    """UTF-8 with or without BOM, else GB18030 (Chinese office software exports both)."""
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileError(f"file starts with a UTF-8 BOM but is not UTF-8: {exc}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise FileError("file is neither UTF-8 nor GB18030 text") from exc


def read_rows(data: bytes, required: Sequence[str], optional: Sequence[str] = ()) -> Iterator[Row | RowFault]:
    """Rows keyed by lower-case column name; a row with the wrong field count comes back as a ``RowFault``."""
    text = decode(data)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise FileError("file is empty; expected a header line") from None
    except csv.Error as exc:
        raise FileError(f"line 1: {exc}") from exc
    columns = [c.strip().lstrip("\ufeff").lower() for c in header]
    if any("\x00" in c for c in columns):
        raise FileError("line 1: the header contains a NUL byte")
    _check_header(columns, required, optional)
    previous_end = reader.line_num
    while True:
        start = previous_end + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # A broken quote swallows the rest of the file; nothing after it can be trusted.
            yield RowFault(start, f"unreadable CSV: {exc}")
            return
        previous_end = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        if len(fields) != len(columns):
            yield RowFault(start, f"expected {len(columns)} fields, found {len(fields)}")
            continue
        nul = next((col for col, v in zip(columns, fields, strict=True) if "\x00" in v), None)
        if nul is not None:
            # No real value holds one, and PostgreSQL text cannot: a bad row, the others still import.
            yield RowFault(start, f"{nul}: contains a NUL byte")
            continue
        yield Row(start, {col: (v.strip() or None) for col, v in zip(columns, fields, strict=True)})


@dataclass(frozen=True)
class RowFault:
    line: int
    reason: str


def _check_header(columns: list[str], required: Sequence[str], optional: Sequence[str]) -> None:
    known = set(required) | set(optional)
    unknown = [c for c in columns if c not in known]
    missing = [c for c in required if c not in columns]
    dupes = sorted({c for c in columns if columns.count(c) > 1})
    problems = []
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown column(s) {', '.join(unknown)}")
    if dupes:
        problems.append(f"repeated column(s) {', '.join(dupes)}")
    if problems:
        expected = ",".join([*required, *optional])
        raise FileError(f"line 1: bad header: {'; '.join(problems)} (expected {expected})")


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
