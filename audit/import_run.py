"""What every CSV import shares: the report, batches that end in the caller's commit, rows in savepoints.

The caller owns the transaction: ``after_batch`` is where it commits each batch (SPEC §6: a file larger than a
batch is committed batch by batch and can be run again). Nothing here commits.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from audit.csv_rows import BadRow, Row
from audit.csv_source import CsvSource
from audit.linking import on_actions_changed
from audit.registry import Registry
from config.errors import BwcError
from config.settings import Settings
from storage.events import append_event

log = logging.getLogger(__name__)

MAX_ERRORS_IN_EVENT = 200
BATCH_ROWS = 2000
Source = bytes | BinaryIO  # a seekable binary file, or its bytes


@dataclass(frozen=True, order=True)
class RowError:
    line: int
    reason: str


@dataclass
class ImportReport:
    """What an import did; ``errors`` name each bad row by its physical line."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    affected_actions: set[int] = field(default_factory=set)  # officers, devices, assignments only

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "errors": [{"line": e.line, "reason": e.reason} for e in self.errors],
        }


@dataclass(frozen=True)
class BatchDone:
    """Handed to ``after_batch`` once a batch is flushed: rows read in it (bad ones too), bytes read so far,
    and the seconds its re-linking and re-judging took (the bulk of an import's time: logged, benchmarked)."""

    rows: int
    bytes_read: int
    report: ImportReport
    linking_seconds: float = 0.0


AfterBatch = Callable[[BatchDone], object]  # what it returns is not looked at
RowHandler = Callable[[Row], tuple[str, frozenset[int]]]


def open_source(source: Source) -> CsvSource:
    """Tests and small callers pass bytes; the CLI and the API pass a file, read as a stream."""
    return CsvSource(io.BytesIO(source) if isinstance(source, bytes) else source)


def row_in_savepoint(
    session: Session, reg: Registry, row: Row, handle: RowHandler, report: ImportReport
) -> frozenset[int] | None:
    """All of the row lands, or none of it and its line is reported; the actions it affects when it landed."""
    savepoint = session.begin_nested()
    try:
        outcome, affected = handle(row)
        session.flush()
    except (BadRow, BwcError, IntegrityError) as exc:
        savepoint.rollback()
        reg.rollback()
        report.errors.append(RowError(row.line, reason_of(exc)))
        return None
    savepoint.commit()
    reg.commit()
    report.count(outcome)
    return affected


def refusals(session: Session) -> tuple[type[Exception], ...]:
    """What a refused row or batch raises: our errors, SQLAlchemy's, and the driver's own from bulk ``COPY``."""
    dbapi = session.get_bind().dialect.dbapi
    driver: tuple[type[Exception], ...] = (dbapi.IntegrityError,) if dbapi is not None else ()
    return (BadRow, BwcError, IntegrityError, *driver)


def reason_of(exc: Exception) -> str:
    """A row's reason in one line: the database's own message can run to many."""
    return exc.message if isinstance(exc, BwcError) else str(exc).splitlines()[0]


class Batches:
    """Counts rows into batches; at each batch's end re-judges what it changed and calls ``after_batch``."""

    def __init__(
        self,
        session: Session,
        settings: Settings,
        source: CsvSource,
        actor: str,
        size: int,
        after_batch: AfterBatch | None,
    ) -> None:
        self.session, self.settings, self.source, self.actor = session, settings, source, actor
        self.size, self.after_batch = size, after_batch
        self.report = ImportReport()
        self.rows = 0
        self.affected: set[int] = set()

    def row_read(self) -> None:
        self.rows += 1
        if self.rows >= self.size:
            self.end()

    def end(self) -> None:
        """Close the current batch (a no-op when it is empty)."""
        if not self.rows:
            return
        started = time.perf_counter()
        if self.affected:
            on_actions_changed(self.session, self.settings, sorted(self.affected), self.actor)
        linking = time.perf_counter() - started
        log.debug("import batch rows=%d relinked=%d linking_s=%.3f", self.rows, len(self.affected), linking)
        self.affected.clear()
        self.session.flush()
        done = BatchDone(self.rows, self.source.bytes_read, self.report, linking)
        self.rows = 0
        if self.after_batch is not None:
            self.after_batch(done)


def finish(session: Session, kind: str, source: CsvSource, source_name: str, report: ImportReport, actor: str) -> None:
    details: dict[str, Any] = {
        "file": source_name,
        "sha256": source.sha256(),
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "error_count": len(report.errors),
        "errors": [{"line": e.line, "reason": e.reason} for e in report.errors[:MAX_ERRORS_IN_EVENT]],
    }
    append_event(session, kind, f"file:{source_name}", details, actor=actor)
    log.info(
        "%s file=%s created=%d updated=%d unchanged=%d errors=%d",
        kind,
        source_name,
        report.created,
        report.updated,
        report.unchanged,
        len(report.errors),
    )
