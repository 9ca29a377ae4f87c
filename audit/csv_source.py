"""A CSV file as a stream of text: its encoding sniffed from the first chunk(s), hashed as it is read.

A city's export runs to hundreds of megabytes, so the file is never held whole: the encoding is decided on the
first chunk that is not plain ASCII (ASCII reads the same in UTF-8 and GB18030), and the text is then decoded
as it streams. Bytes that do not decode later in the file become lone surrogates (``surrogateescape``), which
no valid decoding produces: :func:`bad_text` finds them so that their row is reported, not the file lost.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections.abc import Iterator, Sequence
from typing import BinaryIO

from audit.csv_rows import FileError, Row, RowFault

UTF8_BOM = b"\xef\xbb\xbf"
SNIFF_BYTES = 64 * 1024
_BAD = re.compile("[\udc80-\udcff\x00]")


class _Hashing(io.RawIOBase):
    """Passes reads through, hashing them and counting bytes (for the summary event and the progress bar)."""

    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.sha256.update(data)
        self.count += n
        return n


class CsvSource:
    """One seekable binary file, read once as text after a sniff of its encoding."""

    def __init__(self, raw: BinaryIO) -> None:
        self.encoding = sniff_encoding(raw)
        raw.seek(0)
        self._hashing = _Hashing(raw)
        self._buffered = io.BufferedReader(self._hashing, buffer_size=SNIFF_BYTES)
        self.text = io.TextIOWrapper(self._buffered, encoding=self.encoding, errors="surrogateescape", newline="")

    @property
    def bytes_read(self) -> int:
        return self._hashing.count

    def sha256(self) -> str:
        """The digest of the whole file: what the reader left unread is read (and hashed) first."""
        while self._buffered.read(SNIFF_BYTES):
            pass
        return self._hashing.sha256.hexdigest()


def sniff_encoding(raw: BinaryIO) -> str:
    """``utf-8-sig``, ``utf-8`` or ``gb18030`` from the first chunk that is not pure ASCII."""
    raw.seek(0)
    first = raw.read(SNIFF_BYTES)
    if first.startswith(UTF8_BOM):
        if not _decodes(first[len(UTF8_BOM) :], "utf-8"):
            raise FileError("file starts with a UTF-8 BOM but is not UTF-8")
        return "utf-8-sig"
    chunk, at_start = first, True
    while chunk:
        if not chunk.isascii():
            for encoding in ("utf-8", "gb18030"):
                if _decodes(chunk, encoding):
                    return encoding
            where = "" if at_start else " after the first chunk"
            raise FileError(f"file is neither UTF-8 nor GB18030 text{where}")
        chunk, at_start = raw.read(SNIFF_BYTES), False
    return "utf-8"


def _decodes(chunk: bytes, encoding: str) -> bool:
    # final=False: a character cut at the chunk's end is not an error
    try:
        codecs.getincrementaldecoder(encoding)().decode(chunk, final=False)
    except UnicodeDecodeError:
        return False
    return True


def bad_text(fields: list[str], columns: list[str], encoding: str) -> str | None:
    """Why a row's text cannot be stored (undecodable bytes, a NUL character), or None when it can."""
    if _BAD.search("".join(fields)) is None:
        return None
    for column, value in zip(columns, fields, strict=False):
        found = _BAD.search(value)
        if found is None:
            continue
        if found.group() == "\x00":
            return f"{column}: contains a NUL character"
        return f"{column}: bytes that are not valid {encoding.removesuffix('-sig').upper()} text"
    return "bytes that cannot be read"


def read_rows(source: CsvSource, required: Sequence[str], optional: Sequence[str] = ()) -> Iterator[Row | RowFault]:
    """Rows keyed by lower-case column name; a row with the wrong field count or bad text is a ``RowFault``."""
    reader = csv.reader(source.text, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise FileError("file is empty; expected a header line") from None
    except csv.Error as exc:
        raise FileError(f"line 1: {exc}") from exc
    columns = [c.strip().lstrip("\ufeff").lower() for c in header]
    problem = bad_text(header, columns, source.encoding)
    if problem is not None:
        raise FileError(f"line 1: the header is not readable text ({problem})")
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
        problem = bad_text(fields, columns, source.encoding)
        if problem is not None:
            yield RowFault(start, problem)
            continue
        yield Row(start, {col: (v.strip() or None) for col, v in zip(columns, fields, strict=True)})


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
