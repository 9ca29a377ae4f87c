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

import bisect
import logging
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy.orm import Session

from audit.action_batch import write_batch
from audit.action_rows import ActionWriter, ParsedAction, parse_action
from audit.csv_rows import BadRow, Row, RowFault, parse_bool, parse_float, parse_time
from audit.csv_source import read_rows
from audit.import_run import (
    BATCH_ROWS,
    AfterBatch,
    BatchDone,
    Batches,
    ImportReport,
    RowError,
    Source,
    finish,
    open_source,
    reason_of,
    refusals,
    row_in_savepoint,
)
from audit.line_index import LineIndex
from audit.registry import Change, Registry, assign_device, update_device, update_officer
from config.settings import Settings

__all__ = [
    "BATCH_ROWS",
    "AfterBatch",
    "BatchDone",
    "CsvImport",
    "ImportReport",
    "RowError",
    "Source",
    "import_actions",
    "import_assignments",
    "import_devices",
    "import_officers",
]

log = logging.getLogger(__name__)

ACTION_COLUMNS = (
    *("action_id", "case_number", "unit", "started_at", "ended_at"),
    *("officers", "devices", "location", "kind"),
)
OFFICER_COLUMNS = ("code",), ("name", "unit", "certified")
DEVICE_COLUMNS = ("serial",), ("model", "unit", "clock_offset_seconds")
ASSIGNMENT_COLUMNS = ("device", "officer", "from"), ("to",)


def _action_rows(rows: Iterable[Row | RowFault], reg: Registry, batches: Batches) -> None:
    """Create or update one action per row; a repeated ``action_id`` within one file is an error on its later line."""
    written = LineIndex()
    try:
        actions = _ActionBatches(reg, batches, written)
        for row in rows:
            actions.add(row)
        actions.flush()
    finally:
        written.close()


class _ActionBatches:
    """Parses rows into the current batch and writes it when full; a repeated action_id is a bad row."""

    def __init__(self, reg: Registry, batches: Batches, written: LineIndex) -> None:
        self.reg, self.batches, self.report, self.written = reg, batches, batches.report, written
        self.tz = batches.settings.tz
        self.pending: dict[str, tuple[Row, ParsedAction]] = {}  # action_id → its row, in file order

    def add(self, row: Row | RowFault) -> None:
        try:
            if isinstance(row, RowFault):
                raise BadRow(row.reason)
            parsed = parse_action(row.values, self.tz)
            earlier = self.pending.get(parsed.action_id)
            if earlier is not None:
                raise BadRow(_repeats(parsed.action_id, earlier[0].line))
        except BadRow as exc:
            self.report.errors.append(RowError(row.line, str(exc)))
        else:
            self.pending[parsed.action_id] = (row, parsed)
        if self.batches.rows + 1 >= self.batches.size:
            self.flush()
        self.batches.row_read()

    def flush(self) -> None:
        """Write the pending rows as one batch, or row by row when the database refuses the batch."""
        pending, self.pending = self._not_repeated(self.pending), {}
        if not pending:
            return
        session = self.reg.session
        savepoint = session.begin_nested()
        try:
            result = write_batch(self.reg, [parsed for _, parsed in pending])
            session.flush()
        except refusals(session) as exc:
            savepoint.rollback()
            self.reg.rollback()
            log.warning("import.actions batch refused, redone row by row: %s", reason_of(exc))
            self._row_by_row(pending)
            return
        savepoint.commit()
        self.reg.commit()
        self.written.add((parsed.action_id, row.line) for row, parsed in pending)
        for outcome in result.outcomes:
            self.report.count(outcome)
        self.batches.affected.update(result.changed)

    def _not_repeated(self, pending: dict[str, tuple[Row, ParsedAction]]) -> list[tuple[Row, ParsedAction]]:
        """The rows whose action_id no earlier batch wrote; the others become bad rows, in line order."""
        earlier = self.written.lines_of(list(pending))
        for action_id, line in earlier.items():
            bisect.insort(self.report.errors, RowError(pending[action_id][0].line, _repeats(action_id, line)))
        return [entry for action_id, entry in pending.items() if action_id not in earlier]

    def _row_by_row(self, pending: list[tuple[Row, ParsedAction]]) -> None:
        writer = ActionWriter(self.reg)
        for row, parsed in pending:

            def handle(_row: Row, parsed: ParsedAction = parsed) -> tuple[str, frozenset[int]]:
                outcome, action_pk = writer.upsert(parsed)
                return outcome, frozenset() if outcome == "unchanged" else frozenset({action_pk})

            affected = row_in_savepoint(self.reg.session, self.reg, row, handle, self.report)
            if affected is not None:
                self.written.add([(parsed.action_id, row.line)])
                self.batches.affected.update(affected)


def _repeats(action_id: str, line: int) -> str:
    return f"action_id {action_id!r} repeats line {line}; one row per action"


ImportBody = Callable[[Iterable[Row | RowFault], Registry, Batches], None]
RowChange = Callable[[Registry, Settings, dict[str, str | None]], Change]


class CsvImport:
    """One kind of CSV import: the file opened, its rows handed to ``body`` in batches, one ``import.<what>`` event
    summing it up. What differs between kinds is only the columns and what ``body`` makes of the rows."""

    def __init__(self, what: str, columns: tuple[Sequence[str], ...], body: ImportBody) -> None:
        self.what, self.columns, self.body = what, columns, body
        self.__doc__ = body.__doc__

    def __call__(
        self,
        session: Session,
        settings: Settings,
        source: Source,
        actor: str,
        source_name: str,
        *,
        batch_rows: int = BATCH_ROWS,
        after_batch: AfterBatch | None = None,
    ) -> ImportReport:
        src = open_source(source)
        rows = read_rows(src, *self.columns)
        reg = Registry(session, actor, origin=f"{self.what} import {source_name}")
        batches = Batches(session, settings, src, actor, batch_rows, after_batch)
        self.body(rows, reg, batches)
        batches.end()
        finish(session, f"import.{self.what}", src, source_name, batches.report, actor)
        return batches.report


def _each_row(row_change: RowChange) -> ImportBody:
    """Officers, devices, assignments: a few thousand rows, each ``row_change`` in its own savepoint."""

    def body(rows: Iterable[Row | RowFault], reg: Registry, batches: Batches) -> None:
        report = batches.report

        def handle(row: Row) -> tuple[str, frozenset[int]]:
            change = row_change(reg, batches.settings, row.values)
            return change.outcome, change.affected_actions

        for row in rows:
            if isinstance(row, RowFault):
                report.errors.append(RowError(row.line, row.reason))
            else:
                affected = row_in_savepoint(reg.session, reg, row, handle, report)
                if affected:
                    report.affected_actions.update(affected)
                    batches.affected.update(affected)
            batches.row_read()

    body.__doc__ = row_change.__doc__
    return body


def _officer(reg: Registry, _settings: Settings, v: dict[str, str | None]) -> Change:
    """``code,name,unit,certified``: create or update officers; an empty field leaves the stored value."""
    raw_certified = v.get("certified")
    certified = parse_bool(raw_certified, "certified") if raw_certified else None
    return update_officer(reg, _required(v, "code"), name=v.get("name"), unit=v.get("unit"), certified=certified)


def _device(reg: Registry, _settings: Settings, v: dict[str, str | None]) -> Change:
    """``serial,model,unit,clock_offset_seconds``: create or update devices; empty fields leave stored values."""
    offset = v.get("clock_offset_seconds")
    return update_device(
        reg,
        _required(v, "serial"),
        model=v.get("model"),
        unit=v.get("unit"),
        clock_offset_seconds=parse_float(offset, "clock_offset_seconds") if offset else None,
    )


def _assignment(reg: Registry, settings: Settings, v: dict[str, str | None]) -> Change:
    """``device,officer,from,to``: who carried which device when; an empty ``to`` means still assigned."""
    device, officer = _required(v, "device"), _required(v, "officer")
    valid_from = parse_time(_required(v, "from"), settings.tz, "from", date_only=True)
    to = v.get("to")
    valid_to = parse_time(to, settings.tz, "to", date_only=True) if to else None
    return assign_device(reg, device, officer, valid_from, valid_to)


import_actions = CsvImport("actions", (ACTION_COLUMNS,), _action_rows)
import_officers = CsvImport("officers", OFFICER_COLUMNS, _each_row(_officer))
import_devices = CsvImport("devices", DEVICE_COLUMNS, _each_row(_device))
import_assignments = CsvImport("assignments", ASSIGNMENT_COLUMNS, _each_row(_assignment))


def _required(values: dict[str, str | None], name: str) -> str:
    value = values.get(name)
    if not value:
        raise BadRow(f"{name}: required")
    return value
