"""Actions import at scale: batches committed one by one, re-runs that change nothing, resuming, streaming text."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from audit.csv_rows import FileError
from audit.csv_source import SNIFF_BYTES
from audit.imports import BatchDone, ImportReport, import_actions
from config.settings import Settings, get_settings
from storage.db import transaction
from storage.models import Action, ActionRecording, AuditEvent
from storage.runtime import Runtime
from tests.fixtures.audit_data import ACTION_HEADER, csv_bytes, recording, utc

ACTOR = "test"
BATCH = 4


class Interrupted(Exception):
    """Raised by a test's hook after a batch, as a crash or a kill would stop the import there."""


def _row(n: int, *, unit: str = "U1", devices: str = "D1;D2", place: str = "") -> str:
    start = utc(2024, 5, 1, 8) + timedelta(hours=n)
    end = start + timedelta(minutes=30)
    return f"A{n:03d},C{n // 3},{unit},{start:%Y-%m-%d %H:%M},{end:%Y-%m-%d %H:%M},P{n % 3},{devices},{place},patrol"


def _file(count: int, **kwargs: str) -> list[str]:
    return [ACTION_HEADER, *(_row(n, **kwargs) for n in range(1, count + 1))]


def _run(
    runtime: Runtime, settings: Settings, data: bytes, hook: list[BatchDone] | None = None, stop_after: int = 0
) -> ImportReport:
    """Import as the CLI does: the session's owner commits after every batch (and may stop after one)."""
    seen = hook if hook is not None else []
    with runtime.sessions() as session:

        def after_batch(done: BatchDone) -> None:
            session.commit()
            seen.append(done)
            if stop_after and len(seen) == stop_after:
                raise Interrupted

        report = import_actions(
            session, settings, data, ACTOR, "actions.csv", batch_rows=BATCH, after_batch=after_batch
        )
        session.commit()
    return report


def _stored(runtime: Runtime) -> list[str]:
    with transaction(runtime.sessions) as s:
        return sorted(s.scalars(select(Action.action_id)))


def _event_kinds(s: Session) -> Counter[str]:
    return Counter(s.scalars(select(AuditEvent.kind)))


def test_each_batch_is_committed_and_a_bad_row_in_one_batch_costs_only_that_row(
    runtime: Runtime, settings: Settings
) -> None:
    lines = _file(10)  # 2.5 batches of 4 rows
    lines[6] = "A006,C2,U1,2024-05-01 14:00,2024-05-01 13:00,P0,D1,,patrol"  # line 7, second batch: ends too early
    committed: list[list[str]] = []
    batches: list[BatchDone] = []
    with runtime.sessions() as session:

        def after_batch(done: BatchDone) -> None:
            session.commit()
            batches.append(done)
            committed.append(_stored(runtime))  # what another connection sees once the batch is committed

        report = import_actions(
            session, settings, csv_bytes(lines), ACTOR, "actions.csv", batch_rows=BATCH, after_batch=after_batch
        )
        session.commit()
    assert [(e.line, "after started_at" in e.reason) for e in report.errors] == [(7, True)]
    assert report.created == 9
    assert [b.rows for b in batches] == [4, 4, 2]
    assert [len(ids) for ids in committed] == [4, 7, 9]
    assert "A006" not in committed[-1]
    assert batches[-1].bytes_read == len(csv_bytes(lines))
    with transaction(runtime.sessions) as s:
        assert s.scalar(select(func.count()).select_from(Action).where(Action.verdict.is_(None))) == 0  # all judged


def test_running_the_same_file_again_changes_nothing_and_writes_only_its_summary(
    runtime: Runtime, settings: Settings
) -> None:
    with transaction(runtime.sessions) as s:
        recording(s, "D1", utc(2024, 5, 1, 9, 0), 1800)  # A001's footage: the first run links it
    data = csv_bytes(_file(10))
    first = _run(runtime, settings, data)
    assert first.created == 10
    with transaction(runtime.sessions) as s:
        before = _event_kinds(s)
        links = s.scalar(select(func.count()).select_from(ActionRecording))
    assert before["links.changed"] == 1 and before["action.created"] == 10
    again = _run(runtime, settings, data)
    assert (again.created, again.updated, again.unchanged, again.errors) == (0, 0, 10, [])
    with transaction(runtime.sessions) as s:
        after = _event_kinds(s)
        assert s.scalar(select(func.count()).select_from(ActionRecording)) == links
    assert after - before == Counter({"import.actions": 1})


def test_an_import_stopped_after_a_batch_keeps_it_and_running_it_again_completes_it(
    runtime: Runtime, settings: Settings
) -> None:
    with transaction(runtime.sessions) as s:
        recording(s, "D1", utc(2024, 5, 1, 9, 0), 1800)  # A001, first batch
        recording(s, "D2", utc(2024, 5, 1, 18, 0), 1800)  # A010, third batch
    data = csv_bytes(_file(10))
    with pytest.raises(Interrupted):
        _run(runtime, settings, data, stop_after=1)
    assert _stored(runtime) == [f"A{n:03d}" for n in range(1, 5)]
    with transaction(runtime.sessions) as s:
        assert _event_kinds(s)["import.actions"] == 0  # the interrupted run did not sum itself up
        assert s.scalar(select(func.count()).select_from(ActionRecording)) == 1  # batch 1 was linked with it

    report = _run(runtime, settings, data)
    assert (report.created, report.unchanged, report.errors) == (6, 4, [])
    assert _stored(runtime) == [f"A{n:03d}" for n in range(1, 11)]
    with transaction(runtime.sessions) as s:
        kinds = _event_kinds(s)
        assert (kinds["action.created"], kinds["import.actions"], kinds["links.changed"]) == (10, 1, 2)
        linked = s.execute(select(Action.action_id).join(ActionRecording, ActionRecording.action_id == Action.id))
        assert sorted(linked.scalars()) == ["A001", "A010"]
        assert s.scalar(select(func.count()).select_from(Action).where(Action.verdict.is_(None))) == 0


def test_a_gb18030_file_whose_first_chunk_is_ascii_is_read_as_gb18030_across_batches(
    runtime: Runtime, settings: Settings
) -> None:
    ascii_rows = [_row(n, place="x" * 200) for n in range(1, 400)]  # well past the first sniffed chunk
    chinese = [_row(n, unit="城管一中队", place="人民路88号") for n in range(400, 411)]
    data = csv_bytes([ACTION_HEADER, *ascii_rows, *chinese], "gb18030")
    assert data.index("城".encode("gb18030")) > SNIFF_BYTES
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    report = _run(runtime, settings, data)
    assert (report.created, report.errors) == (410, [])
    with transaction(runtime.sessions) as s:
        last = s.scalar(select(Action).where(Action.action_id == "A410"))
        assert last is not None and last.unit is not None
        assert (last.unit.code, last.location) == ("城管一中队", "人民路88号")


def test_bytes_that_do_not_decode_late_in_the_file_are_a_bad_row_not_a_lost_file(
    runtime: Runtime, settings: Settings
) -> None:
    lines = _file(300, place="y" * 250)  # UTF-8 decided on the first chunk (a Chinese unit name) …
    lines[1] = _row(1, unit="城管一中队")
    data = bytearray(csv_bytes(lines))
    bad = data.index(b"A250,")  # … and line 251 carries a byte that is not UTF-8, far past that chunk
    assert bad > SNIFF_BYTES
    data[bad + 5 : bad + 5] = b"\xff"
    report = _run(runtime, settings, bytes(data))
    assert [(e.line, e.reason) for e in report.errors] == [(251, "case_number: bytes that are not valid UTF-8 text")]
    assert report.created == 299


def test_a_nul_character_in_a_field_is_a_bad_row(runtime: Runtime, settings: Settings) -> None:
    lines = _file(6)
    lines[5] = _row(5, place="Main\x00St")
    report = _run(runtime, settings, csv_bytes(lines))
    assert [(e.line, e.reason) for e in report.errors] == [(6, "location: contains a NUL character")]
    assert report.created == 5
    assert "A005" not in _stored(runtime)


def test_a_file_that_is_neither_utf8_nor_gb18030_imports_nothing(runtime: Runtime, settings: Settings) -> None:
    data = ACTION_HEADER.encode() + b"\r\n" + bytes(range(128, 256)) * 4
    with pytest.raises(FileError, match="neither UTF-8 nor GB18030"):
        _run(runtime, settings, data)
    assert _stored(runtime) == []


def test_the_cli_prints_counts_and_bad_lines_and_no_progress_bar_when_piped(
    runtime: Runtime, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.cli.main import app

    monkeypatch.setenv("BWC_HOME", str(settings.home))
    monkeypatch.setenv("BWC_DATABASE_URL", settings.db_url)
    get_settings.cache_clear()
    lines = _file(5)
    lines[3] = _row(3, place="a\x00b")
    path = tmp_path / "actions.csv"
    path.write_bytes(csv_bytes(lines))
    try:
        result = CliRunner().invoke(app, ["actions", "import", str(path)])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert result.stderr == "line 4: location: contains a NUL character\n"  # no bar, no rate: not a terminal
    assert result.stdout == "actions: 4 created, 0 updated, 0 unchanged, 1 bad row(s)\n"
