"""CSV imports of actions, officers, devices and device assignments (SPEC §6).

Every row is written inside its own savepoint: a bad row is reported by its physical line number (the
header is line 1) and leaves nothing behind, and the good rows still import. A file whose header is wrong
or that cannot be decoded imports nothing (``FileError``). Affected actions are re-linked and re-judged in
the same transaction, and one ``import.*`` event sums the file up.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from audit.action_rows import ActionWriter, parse_action
from audit.csv_rows import BadRow, Row, RowFault, parse_bool, parse_float, parse_time, read_rows
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
    affected_actions: set[int] = field(default_factory=set)

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "errors": [{"line": e.line, "reason": e.reason} for e in self.errors],
        }


RowHandler = Callable[[Row], tuple[str, frozenset[int]]]


def _run_rows(
    session: Session,
    rows: Any,
    handle: RowHandler,
    reg: Registry,
    report: ImportReport,
) -> None:
    """Each row in a SAVEPOINT: all of it lands, or none of it and its line is reported."""
    for row in rows:
        if isinstance(row, RowFault):
            report.errors.append(RowError(row.line, row.reason))
            continue
        savepoint = session.begin_nested()
        try:
            outcome, affected = handle(row)
            session.flush()
        except (BadRow, BwcError, IntegrityError) as exc:
            savepoint.rollback()
            reg.rollback()
            reason = exc.message if isinstance(exc, BwcError) else str(exc).splitlines()[0]
            report.errors.append(RowError(row.line, reason))
            continue
        savepoint.commit()
        reg.commit()
        report.count(outcome)
        report.affected_actions.update(affected)


def _finish(
    session: Session,
    settings: Settings,
    kind: str,
    data: bytes,
    source_name: str,
    report: ImportReport,
    actor: str,
) -> ImportReport:
    if report.affected_actions:
        on_actions_changed(session, settings, sorted(report.affected_actions), actor)
    details: dict[str, Any] = {
        "file": source_name,
        "sha256": hashlib.sha256(data).hexdigest(),
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
    return report


def import_actions(session: Session, settings: Settings, data: bytes, actor: str, source_name: str) -> ImportReport:
    """Create or update one action per row; a repeated ``action_id`` within one file is an error on its later line."""
    rows = read_rows(data, ACTION_COLUMNS)
    reg = Registry(session, actor, origin=f"actions import {source_name}")
    writer = ActionWriter(reg)
    report = ImportReport()
    seen: dict[str, int] = {}

    def handle(row: Row) -> tuple[str, frozenset[int]]:
        parsed = parse_action(row.values, settings.tz)
        first = seen.get(parsed.action_id)
        if first is not None:
            raise BadRow(f"action_id {parsed.action_id!r} repeats line {first}; one row per action")
        outcome, action_id = writer.upsert(parsed)
        seen[parsed.action_id] = row.line
        return outcome, frozenset() if outcome == "unchanged" else frozenset({action_id})

    _run_rows(session, rows, handle, reg, report)
    return _finish(session, settings, "import.actions", data, source_name, report, actor)


def import_officers(session: Session, settings: Settings, data: bytes, actor: str, source_name: str) -> ImportReport:
    """``code,name,unit,certified``: create or update officers; an empty field leaves the stored value."""
    required, optional = OFFICER_COLUMNS
    rows = read_rows(data, required, optional)
    reg = Registry(session, actor, origin=f"officers import {source_name}")
    report = ImportReport()

    def handle(row: Row) -> tuple[str, frozenset[int]]:
        v = row.values
        code = _required(v, "code")
        raw_certified = v.get("certified")
        certified = parse_bool(raw_certified, "certified") if raw_certified else None
        change = update_officer(reg, code, name=v.get("name"), unit=v.get("unit"), certified=certified)
        return change.outcome, change.affected_actions

    _run_rows(session, rows, handle, reg, report)
    return _finish(session, settings, "import.officers", data, source_name, report, actor)


def import_devices(session: Session, settings: Settings, data: bytes, actor: str, source_name: str) -> ImportReport:
    """``serial,model,unit,clock_offset_seconds``: create or update devices; empty fields leave stored values."""
    required, optional = DEVICE_COLUMNS
    rows = read_rows(data, required, optional)
    reg = Registry(session, actor, origin=f"devices import {source_name}")
    report = ImportReport()

    def handle(row: Row) -> tuple[str, frozenset[int]]:
        v = row.values
        serial = _required(v, "serial")
        offset = v.get("clock_offset_seconds")
        change = update_device(
            reg,
            serial,
            model=v.get("model"),
            unit=v.get("unit"),
            clock_offset_seconds=parse_float(offset, "clock_offset_seconds") if offset else None,
        )
        return change.outcome, change.affected_actions

    _run_rows(session, rows, handle, reg, report)
    return _finish(session, settings, "import.devices", data, source_name, report, actor)


def import_assignments(session: Session, settings: Settings, data: bytes, actor: str, source_name: str) -> ImportReport:
    """``device,officer,from,to``: who carried which device when; an empty ``to`` means still assigned."""
    required, optional = ASSIGNMENT_COLUMNS
    rows = read_rows(data, required, optional)
    reg = Registry(session, actor, origin=f"assignments import {source_name}")
    report = ImportReport()

    def handle(row: Row) -> tuple[str, frozenset[int]]:
        v = row.values
        device, officer = _required(v, "device"), _required(v, "officer")
        valid_from = parse_time(_required(v, "from"), settings.tz, "from", date_only=True)
        to = v.get("to")
        valid_to = parse_time(to, settings.tz, "to", date_only=True) if to else None
        change = assign_device(reg, device, officer, valid_from, valid_to)
        return change.outcome, change.affected_actions

    _run_rows(session, rows, handle, reg, report)
    return _finish(session, settings, "import.assignments", data, source_name, report, actor)


def _required(values: dict[str, str | None], name: str) -> str:
    value = values.get(name)
    if not value:
        raise BadRow(f"{name}: required")
    return value
