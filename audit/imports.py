"""CSV imports of actions, officers, devices and device assignments (SPEC §6).

The file streams through in batches (``BATCH_ROWS`` rows), each flushed and then handed to ``after_batch``,
where the caller (the owner of the transaction) commits it: a crash keeps the batches before it, and running
the same file again completes the import, rows already stored being ``unchanged`` (no event). A bad row is
reported by its physical line number (the header is line 1) and leaves nothing behind, and the good rows
still import. A file whose header is wrong or whose encoding cannot be told imports nothing (``FileError``).
Each batch's affected actions are re-linked and re-judged in the batch, and one ``import.*`` event sums the
file up.

Actions, the city-scale case, are written a batch at a time (:mod:`audit.action_batch`); should the database
refuse a batch, it is redone row by row, each row in its own savepoint. Officers, devices and assignments,
a few thousand rows, go row by row.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from audit.action_batch import write_batch
from audit.action_rows import ActionWriter, ParsedAction, parse_action
from audit.csv_rows import BadRow, Row, RowFault, parse_bool, parse_float, parse_time
from audit.csv_source import CsvSource, read_rows
from audit.linking import on_actions_changed
from audit.registry import Registry, assign_device, update_device, update_officer
from config.errors import BwcError
from config.settings import Settings
from storage.events import append_event

log = logging.getLogger(__name__)

ACTION_COLUMNS = (
    *("action_id", "case_number", "unit", "started_at", "ended_at"),
    *("officers", "devices", "location", "kind"),
)
OFFICER_COLUMNS = ("code",), ("name", "unit", "certified")
DEVICE_COLUMNS = ("serial",), ("model", "unit", "clock_offset_seconds")
ASSIGNMENT_COLUMNS = ("device", "officer", "from"), ("to",)
MAX_ERRORS_IN_EVENT = 200
BATCH_ROWS = 2000
Source = bytes | BinaryIO  # a seekable binary file, or its bytes


@dataclass(frozen=True)
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
    """Handed to ``after_batch`` once a batch is flushed: rows read in it (bad ones too), bytes read so far."""

    rows: int
    bytes_read: int
    report: ImportReport


AfterBatch = Callable[[BatchDone], None]
RowHandler = Callable[[Row], tuple[str, frozenset[int]]]


def _source(source: Source) -> CsvSource:
    return CsvSource(io.BytesIO(source) if isinstance(source, bytes) else source)


def _row_in_savepoint(
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
        report.errors.append(RowError(row.line, _reason(exc)))
        return None
    savepoint.commit()
    reg.commit()
    report.count(outcome)
    return affected


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, BwcError) else str(exc).splitlines()[0]


class _Batches:
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
        if self.affected:
            on_actions_changed(self.session, self.settings, sorted(self.affected), self.actor)
            self.affected.clear()
        self.session.flush()
        done = BatchDone(self.rows, self.source.bytes_read, self.report)
        self.rows = 0
        if self.after_batch is not None:
            self.after_batch(done)


def _finish(session: Session, kind: str, source: CsvSource, source_name: str, report: ImportReport, actor: str) -> None:
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


def import_actions(
    session: Session,
    settings: Settings,
    source: Source,
    actor: str,
    source_name: str,
    *,
    batch_rows: int = BATCH_ROWS,
    after_batch: AfterBatch | None = None,
) -> ImportReport:
    """Create or update one action per row; a repeated ``action_id`` within one file is an error on its later line."""
    src = _source(source)
    rows = read_rows(src, ACTION_COLUMNS)
    reg = Registry(session, actor, origin=f"actions import {source_name}")
    batches = _Batches(session, settings, src, actor, batch_rows, after_batch)
    actions = _ActionBatches(reg, batches)
    for row in rows:
        actions.add(row)
    actions.flush()
    batches.end()
    _finish(session, "import.actions", src, source_name, batches.report, actor)
    return batches.report


class _ActionBatches:
    """Parses rows into the current batch and writes it when full; remembers each action_id's line."""

    def __init__(self, reg: Registry, batches: _Batches) -> None:
        self.reg, self.batches, self.report = reg, batches, batches.report
        self.tz = batches.settings.tz
        # 16-byte digest of each action_id written so far → its line: bounded memory per row, whatever the id
        self.seen: dict[bytes, int] = {}
        self.pending: list[tuple[Row, ParsedAction, bytes]] = []
        self.pending_keys: dict[bytes, int] = {}

    def add(self, row: Row | RowFault) -> None:
        try:
            if isinstance(row, RowFault):
                raise BadRow(row.reason)
            parsed = parse_action(row.values, self.tz)
            key = hashlib.blake2b(parsed.action_id.encode(), digest_size=16).digest()
            first = self.seen.get(key) or self.pending_keys.get(key)
            if first is not None:
                raise BadRow(f"action_id {parsed.action_id!r} repeats line {first}; one row per action")
        except BadRow as exc:
            self.report.errors.append(RowError(row.line, str(exc)))
        else:
            self.pending.append((row, parsed, key))
            self.pending_keys[key] = row.line
        if self.batches.rows + 1 >= self.batches.size:
            self.flush()
        self.batches.row_read()

    def flush(self) -> None:
        """Write the pending rows as one batch, or row by row when the database refuses the batch."""
        pending, self.pending, self.pending_keys = self.pending, [], {}
        if not pending:
            return
        session = self.reg.session
        savepoint = session.begin_nested()
        try:
            result = write_batch(self.reg, [parsed for _, parsed, _ in pending])
            session.flush()
        except (BadRow, BwcError, IntegrityError) as exc:
            savepoint.rollback()
            self.reg.rollback()
            log.warning("import.actions batch refused, redone row by row: %s", _reason(exc))
            self._row_by_row(pending)
            return
        savepoint.commit()
        self.reg.commit()
        for (row, _, key), outcome in zip(pending, result.outcomes, strict=True):
            self.seen[key] = row.line
            self.report.count(outcome)
        self.batches.affected.update(result.changed)

    def _row_by_row(self, pending: list[tuple[Row, ParsedAction, bytes]]) -> None:
        writer = ActionWriter(self.reg)
        for row, parsed, key in pending:

            def handle(_row: Row, parsed: ParsedAction = parsed) -> tuple[str, frozenset[int]]:
                outcome, action_pk = writer.upsert(parsed)
                return outcome, frozenset() if outcome == "unchanged" else frozenset({action_pk})

            affected = _row_in_savepoint(self.reg.session, self.reg, row, handle, self.report)
            if affected is not None:
                self.seen[key] = row.line
                self.batches.affected.update(affected)


def _import_rows(
    session: Session,
    settings: Settings,
    source: Source,
    actor: str,
    name: tuple[str, str],
    columns: tuple[tuple[str, ...], tuple[str, ...]],
    make_handle: Callable[[Registry], RowHandler],
    batch_rows: int,
    after_batch: AfterBatch | None,
) -> ImportReport:
    """Row by row, each in a savepoint, in batches that re-judge the actions they affect."""
    what, source_name = name
    src = _source(source)
    rows = read_rows(src, *columns)
    reg = Registry(session, actor, origin=f"{what} import {source_name}")
    handle = make_handle(reg)
    batches = _Batches(session, settings, src, actor, batch_rows, after_batch)
    report = batches.report
    for row in rows:
        if isinstance(row, RowFault):
            report.errors.append(RowError(row.line, row.reason))
        else:
            affected = _row_in_savepoint(session, reg, row, handle, report)
            if affected:
                report.affected_actions.update(affected)
                batches.affected.update(affected)
        batches.row_read()
    batches.end()
    _finish(session, f"import.{what}", src, source_name, report, actor)
    return report


def import_officers(
    session: Session,
    settings: Settings,
    source: Source,
    actor: str,
    source_name: str,
    *,
    batch_rows: int = BATCH_ROWS,
    after_batch: AfterBatch | None = None,
) -> ImportReport:
    """``code,name,unit,certified``: create or update officers; an empty field leaves the stored value."""

    def make_handle(reg: Registry) -> RowHandler:
        def handle(row: Row) -> tuple[str, frozenset[int]]:
            v = row.values
            code = _required(v, "code")
            raw_certified = v.get("certified")
            certified = parse_bool(raw_certified, "certified") if raw_certified else None
            change = update_officer(reg, code, name=v.get("name"), unit=v.get("unit"), certified=certified)
            return change.outcome, change.affected_actions

        return handle

    name = ("officers", source_name)
    return _import_rows(session, settings, source, actor, name, OFFICER_COLUMNS, make_handle, batch_rows, after_batch)


def import_devices(
    session: Session,
    settings: Settings,
    source: Source,
    actor: str,
    source_name: str,
    *,
    batch_rows: int = BATCH_ROWS,
    after_batch: AfterBatch | None = None,
) -> ImportReport:
    """``serial,model,unit,clock_offset_seconds``: create or update devices; empty fields leave stored values."""

    def make_handle(reg: Registry) -> RowHandler:
        def handle(row: Row) -> tuple[str, frozenset[int]]:
            v = row.values
            offset = v.get("clock_offset_seconds")
            change = update_device(
                reg,
                _required(v, "serial"),
                model=v.get("model"),
                unit=v.get("unit"),
                clock_offset_seconds=parse_float(offset, "clock_offset_seconds") if offset else None,
            )
            return change.outcome, change.affected_actions

        return handle

    name = ("devices", source_name)
    return _import_rows(session, settings, source, actor, name, DEVICE_COLUMNS, make_handle, batch_rows, after_batch)


def import_assignments(
    session: Session,
    settings: Settings,
    source: Source,
    actor: str,
    source_name: str,
    *,
    batch_rows: int = BATCH_ROWS,
    after_batch: AfterBatch | None = None,
) -> ImportReport:
    """``device,officer,from,to``: who carried which device when; an empty ``to`` means still assigned."""

    def make_handle(reg: Registry) -> RowHandler:
        def handle(row: Row) -> tuple[str, frozenset[int]]:
            v = row.values
            device, officer = _required(v, "device"), _required(v, "officer")
            valid_from = parse_time(_required(v, "from"), settings.tz, "from", date_only=True)
            to = v.get("to")
            valid_to = parse_time(to, settings.tz, "to", date_only=True) if to else None
            change = assign_device(reg, device, officer, valid_from, valid_to)
            return change.outcome, change.affected_actions

        return handle

    name = ("assignments", source_name)
    columns = ASSIGNMENT_COLUMNS
    return _import_rows(session, settings, source, actor, name, columns, make_handle, batch_rows, after_batch)


def _required(values: dict[str, str | None], name: str) -> str:
    value = values.get(name)
    if not value:
        raise BadRow(f"{name}: required")
    return value
