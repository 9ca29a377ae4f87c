"""Which line of this file already wrote a given key, kept on disk so memory stays flat however long the file.

A million-row import would hold a million ids in a dict (~100 MB); a private temporary SQLite file (deleted
when closed, its page cache a couple of MiB) answers the same question a batch at a time.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence

CHUNK = 500  # keys per IN (...) list


class LineIndex:
    """key → the physical line that first wrote it, for one import."""

    def __init__(self) -> None:
        self._db = sqlite3.connect("")  # "": a temporary database on disk, not in memory
        self._db.execute("CREATE TABLE seen (key TEXT PRIMARY KEY, line INTEGER NOT NULL) WITHOUT ROWID")

    def lines_of(self, keys: Sequence[str]) -> dict[str, int]:
        """The keys already written, with their lines."""
        found: dict[str, int] = {}
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            found.update(self._db.execute(f"SELECT key, line FROM seen WHERE key IN ({marks})", chunk).fetchall())
        return found

    def add(self, pairs: Iterable[tuple[str, int]]) -> None:
        self._db.executemany("INSERT INTO seen (key, line) VALUES (?, ?)", pairs)

    def close(self) -> None:
        self._db.close()
