"""The station's own record of what it pushes: one SQLite file under the station's ``BWC_HOME``.

A station may not reach the service's database, yet must remember across restarts (and a SIGKILL) which
files it hashed, which upload each one has on the server, how far it got, when to try again and whether the
after-ingest step is done. SQLite in WAL mode with ``synchronous=FULL`` commits each change durably; every
call opens its own short connection, so the watcher's worker threads never share one.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QUEUE_FILE = "station-queue.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    path TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    state TEXT NOT NULL,
    upload_url TEXT,
    "offset" INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL,
    last_error TEXT,
    last_failed_at REAL,
    resumed_from INTEGER,
    bytes_sent INTEGER NOT NULL DEFAULT 0,
    server_status TEXT,
    server_sha256 TEXT,
    recording_id INTEGER,
    after_ingest TEXT,
    queued_at REAL NOT NULL,
    updated_at REAL NOT NULL
)
"""


@dataclass(frozen=True)
class QueueItem:
    """One file as the station knows it: ``queued`` (not yet acknowledged) or ``done`` (the server stored it)."""

    path: str
    kind: str
    size: int
    mtime_ns: int
    sha256: str
    state: str
    upload_url: str | None
    offset: int
    attempts: int
    next_attempt_at: float | None
    last_error: str | None
    last_failed_at: float | None
    resumed_from: int | None
    bytes_sent: int
    server_status: str | None
    server_sha256: str | None
    recording_id: int | None
    after_ingest: str | None
    queued_at: float
    updated_at: float

    def as_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def queue_path(home: Path) -> Path:
    return home / QUEUE_FILE


class PushQueue:
    """The queue file; safe to use from several threads and processes (SQLite's own locking)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._db() as db:
            db.execute(_SCHEMA)

    @contextmanager
    def _db(self, synchronous: str = "FULL") -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={synchronous}")
            yield db
        finally:
            db.close()

    def get(self, path: str) -> QueueItem | None:
        with self._db() as db:
            row = db.execute("SELECT * FROM queue WHERE path = ?", (path,)).fetchone()
        return QueueItem(**dict(row)) if row is not None else None

    def items(self) -> list[QueueItem]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM queue ORDER BY state DESC, queued_at, path").fetchall()
        return [QueueItem(**dict(r)) for r in rows]

    def enqueue(self, path: str, kind: str, size: int, mtime_ns: int, sha256: str) -> QueueItem:
        """(Re)queue a file as hashed now; a file that changed since starts a new upload."""
        now = time.time()
        with self._db() as db:
            db.execute(
                """INSERT INTO queue (path, kind, size, mtime_ns, sha256, state, queued_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)
                   ON CONFLICT(path) DO UPDATE SET kind = excluded.kind, size = excluded.size,
                     mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256, state = 'queued', upload_url = NULL,
                     "offset" = 0, resumed_from = NULL, server_status = NULL, server_sha256 = NULL,
                     recording_id = NULL, after_ingest = NULL, updated_at = excluded.updated_at""",
                (path, kind, size, mtime_ns, sha256, now, now),
            )
        item = self.get(path)
        assert item is not None
        return item

    def update(self, path: str, **fields: Any) -> None:
        """Set some columns of one item (names are this module's own, never input)."""
        fields["updated_at"] = time.time()
        columns = ", ".join(f'"{name}" = ?' for name in fields)
        with self._db() as db:
            db.execute(f"UPDATE queue SET {columns} WHERE path = ?", (*fields.values(), path))

    def add_sent(self, path: str, n: int, offset: int) -> None:
        """The server acknowledged ``offset``; ``n`` more bytes went over the wire for it.

        Progress only (a resume asks the server with ``HEAD`` anyway): committed without waiting for the disk,
        so it survives a killed station at once and a power cut with the next state change (WAL, one fsync per
        PATCH saved on the station)."""
        with self._db(synchronous="NORMAL") as db:
            db.execute(
                'UPDATE queue SET "offset" = ?, bytes_sent = bytes_sent + ?, updated_at = ? WHERE path = ?',
                (offset, n, time.time(), path),
            )

    def failed(self, path: str, error: str, next_attempt_at: float, now: float) -> int:
        """Count a failed attempt; returns the attempts so far."""
        with self._db() as db:
            db.execute(
                "UPDATE queue SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, last_failed_at = ?,"
                " updated_at = ? WHERE path = ?",
                (error, next_attempt_at, now, now, path),
            )
            row = db.execute("SELECT attempts FROM queue WHERE path = ?", (path,)).fetchone()
        return int(row[0]) if row is not None else 0
