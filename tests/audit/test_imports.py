"""CSV imports: line numbers, savepoints, updates, encodings, time zones, affected actions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from audit.csv_rows import FileError, parse_time, split_list
from audit.imports import import_actions, import_assignments, import_devices, import_officers
from config.settings import Settings
from storage.db import transaction
from storage.models import (
    Action,
    ActionDevice,
    ActionOfficer,
    Device,
    DeviceAssignment,
    Officer,
    Unit,
)
from storage.runtime import Runtime
from tests.fixtures.audit_data import ACTION_HEADER, csv_bytes, events

ACTOR = "test"


@pytest.fixture
def shanghai(settings: Settings) -> Settings:
    return settings.model_copy(update={"timezone": "Asia/Shanghai"})


def _import(runtime: Runtime, settings: Settings, data: bytes, name: str = "actions.csv") -> Any:
    with transaction(runtime.sessions) as s:
        return import_actions(s, settings, data, ACTOR, name)


def test_bad_rows_are_named_by_physical_line_and_good_rows_import(runtime: Runtime, settings: Settings) -> None:
    data = csv_bytes(
        [
            ACTION_HEADER,
            'A1,C1,U1,2024-05-01 08:00,2024-05-01 09:00,P1,D1;D2,"Main St,\nnear the market",patrol',  # lines 2-3
            "A2,C1,U1,2024-05-01 25:00,2024-05-01 09:00,P1,D1,,patrol",  # 4: bad time
            ",C1,U1,2024-05-01 08:00,2024-05-01 09:00,P1,D1,,patrol",  # 5: no action_id
            "A3,C1,U1,2024-05-01 10:00,2024-05-01 09:00,P1,D1,,patrol",  # 6: ends before it starts
            "A4,C1,U1,2024-05-01 10:00",  # 7: wrong field count
            "",  # 8: blank, skipped
            "A5,C2,U2,2024-05-01 10:00,2024-05-01 11:00,P2,,,",  # 9: good
            "A1,C1,U1,2024-05-01 08:00,2024-05-01 09:30,P1,D1,,patrol",  # 10: repeats A1
        ]
    )
    report = _import(runtime, settings, data)
    assert (report.created, report.updated, report.unchanged) == (2, 0, 0)
    lines = {e.line: e.reason for e in report.errors}
    assert sorted(lines) == [4, 5, 6, 7, 10]
    assert "started_at" in lines[4]
    assert "action_id" in lines[5]
    assert "after started_at" in lines[6]
    assert "expected 9 fields, found 4" in lines[7]
    assert "repeats line 2" in lines[10]
    with transaction(runtime.sessions) as s:
        assert sorted(s.scalars(select(Action.action_id))) == ["A1", "A5"]
        a1 = s.scalar(select(Action).where(Action.action_id == "A1"))
        assert a1 is not None and a1.location == "Main St,\nnear the market"
        assert a1.ended_at == datetime(2024, 5, 1, 9, 0, tzinfo=UTC)  # the repeat on line 10 did not win
        named = s.scalars(select(Device.serial).join(ActionDevice).where(ActionDevice.action_id == a1.id)).all()
        assert sorted(named) == ["D1", "D2"]
        (subject, summary) = events(s, "import.actions")[0]
        assert subject == "file:actions.csv"
        assert summary["created"] == 2 and summary["error_count"] == 5
        assert [e["line"] for e in summary["errors"]] == [4, 5, 6, 7, 10]
        assert len(summary["sha256"]) == 64
        assert {subj for subj, _ in events(s, "action.created")} == {"action:A1", "action:A5"}


@pytest.fixture
def explode_on_device(runtime: Runtime) -> Iterator[str]:
    """A database whose trigger refuses one device serial at INSERT time, after the row's unit and officer."""
    serial = "REFUSED-BY-DB"
    with runtime.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(
                "CREATE FUNCTION refuse_device() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.serial = '{serial}' THEN RAISE EXCEPTION 'refused' "
                "USING ERRCODE = 'integrity_constraint_violation'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            conn.exec_driver_sql(
                "CREATE TRIGGER refuse_device BEFORE INSERT ON devices FOR EACH ROW EXECUTE FUNCTION refuse_device()"
            )
        else:
            conn.exec_driver_sql(
                f"CREATE TRIGGER refuse_device BEFORE INSERT ON devices WHEN NEW.serial = '{serial}' "
                "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            )
    yield serial
    with runtime.engine.begin() as conn:  # the PostgreSQL test database outlives the test
        conn.exec_driver_sql(
            "DROP TRIGGER refuse_device" + (" ON devices" if conn.dialect.name == "postgresql" else "")
        )
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("DROP FUNCTION refuse_device()")


def test_a_row_failing_midway_leaves_nothing(runtime: Runtime, settings: Settings, explode_on_device: str) -> None:
    data = csv_bytes(
        [
            ACTION_HEADER,
            f"B1,C9,新单位,2024-05-01 08:00,2024-05-01 09:00,NEWOFF,{explode_on_device},,",
            "B2,C9,U1,2024-05-01 08:00,2024-05-01 09:00,P1,D1,,",
        ]
    )
    report = _import(runtime, settings, data)
    assert [e.line for e in report.errors] == [2]
    assert report.created == 1
    with transaction(runtime.sessions) as s:
        assert s.scalar(select(Unit).where(Unit.code == "新单位")) is None
        assert s.scalar(select(Officer).where(Officer.code == "NEWOFF")) is None
        assert s.scalar(select(Action).where(Action.action_id == "B1")) is None
        assert s.scalar(select(Action).where(Action.action_id == "B2")) is not None
        assert [subj for subj, _ in events(s, "unit.created")] == ["unit:U1"]


def test_reimport_updates_and_reports_changed_fields(runtime: Runtime, settings: Settings) -> None:
    first = csv_bytes(
        [
            ACTION_HEADER,
            "A1,C1,U1,2024-05-01 08:00,2024-05-01 09:00,P1;P2,D1,Main St,patrol",
            "A2,C1,U1,2024-05-01 08:00,2024-05-01 09:00,P1,D1,,",
        ]
    )
    _import(runtime, settings, first)
    second = csv_bytes(
        [
            ACTION_HEADER,
            "A1,C1,U2,2024-05-01 08:00,2024-05-01 09:30,P1,D1;D3,Main St,patrol",
            "A2,C1,U1,2024-05-01 08:00,2024-05-01 09:00,P1,D1,,",
        ]
    )
    report = _import(runtime, settings, second, "again.csv")
    assert (report.created, report.updated, report.unchanged) == (0, 1, 1)
    with transaction(runtime.sessions) as s:
        updates = events(s, "action.updated")
        assert [subj for subj, _ in updates] == ["action:A1"]
        changes = updates[0][1]["changes"]
        assert set(changes) == {"unit", "ended_at", "officers", "devices"}
        assert changes["unit"] == {"from": "U1", "to": "U2"}
        assert changes["officers"] == {"from": ["P1", "P2"], "to": ["P1"]}
        assert changes["devices"] == {"from": ["D1"], "to": ["D1", "D3"]}
        a1 = s.scalar(select(Action).where(Action.action_id == "A1"))
        assert a1 is not None and a1.ended_at == datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
        officers = s.scalars(select(Officer.code).join(ActionOfficer).where(ActionOfficer.action_id == a1.id)).all()
        assert list(officers) == ["P1"]
        assert s.scalar(select(func.count()).select_from(Action)) == 2


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8-sig", "utf-8"])
def test_chinese_text_in_each_office_encoding(runtime: Runtime, shanghai: Settings, encoding: str) -> None:
    data = csv_bytes(
        [
            ACTION_HEADER,
            "A1,城管罚字〔2024〕001号,城管一中队,2024-05-01 08:00,2024-05-01 09:00,张三;李四,D1,人民路88号,占道经营",
        ],
        encoding,
    )
    if encoding == "gb18030":
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")  # the test really feeds a non-UTF-8 file
    report = _import(runtime, shanghai, data)
    assert report.created == 1 and not report.errors
    with transaction(runtime.sessions) as s:
        action = s.scalar(select(Action).where(Action.action_id == "A1"))
        assert action is not None and action.unit is not None
        assert (action.unit.code, action.location, action.kind) == ("城管一中队", "人民路88号", "占道经营")
        assert action.case_number == "城管罚字〔2024〕001号"
        assert action.started_at == datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
        assert sorted(s.scalars(select(Officer.code))) == ["张三", "李四"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01 08:00", datetime(2024, 5, 1, 0, 0, tzinfo=UTC)),
        ("2024-05-01 08:00:30", datetime(2024, 5, 1, 0, 0, 30, tzinfo=UTC)),
        ("2024/5/1 8:00", datetime(2024, 5, 1, 0, 0, tzinfo=UTC)),
        ("2024-05-01T08:00:00+09:00", datetime(2024, 4, 30, 23, 0, tzinfo=UTC)),
        ("2024-05-01T08:00:00Z", datetime(2024, 5, 1, 8, 0, tzinfo=UTC)),
        ("2024-05-01T08:00:00.250-0130", datetime(2024, 5, 1, 9, 30, 0, 250000, tzinfo=UTC)),
    ],
)
def test_times_are_read_in_the_configured_zone_unless_they_carry_an_offset(text: str, expected: datetime) -> None:
    from zoneinfo import ZoneInfo

    assert parse_time(text, ZoneInfo("Asia/Shanghai"), "t") == expected


def test_lists_accept_full_width_semicolons_and_drop_repeats() -> None:
    assert split_list(" P1；P2; ;P1 ") == ["P1", "P2"]


@pytest.mark.parametrize(
    "header",
    [
        "action_id,case_number,unit,started_at,ended_at,officers,devices,location",  # kind missing
        ACTION_HEADER + ",notes",  # unknown column
    ],
)
def test_a_bad_header_rejects_the_whole_file(runtime: Runtime, settings: Settings, header: str) -> None:
    data = csv_bytes([header, "A1,C1,U1,2024-05-01 08:00,2024-05-01 09:00,P1,D1,x,y"])
    with pytest.raises(FileError, match="line 1: bad header"), transaction(runtime.sessions) as s:
        import_actions(s, settings, data, ACTOR, "bad.csv")
    with transaction(runtime.sessions) as s:
        assert s.scalar(select(func.count()).select_from(Action)) == 0


def test_header_order_is_free_and_case_insensitive(runtime: Runtime, settings: Settings) -> None:
    data = csv_bytes(
        [
            "KIND,Location,devices,officers,ended_at,started_at,unit,case_number,Action_ID",
            "patrol,,D1,P1,9:00,,U1,C1,A1",
        ]
    )
    report = _import(runtime, settings, data)
    assert [e.line for e in report.errors] == [2]  # 9:00 alone is not a time and started_at is empty
    data = csv_bytes(
        [
            "KIND,Location,devices,officers,ended_at,started_at,unit,case_number,Action_ID",
            "patrol,,D1,P1,2024-05-01 09:00,2024-05-01 08:00,U1,C1,A1",
        ]
    )
    assert _import(runtime, settings, data).created == 1


def test_officer_import_reads_certification_words_and_reports_affected_actions(
    runtime: Runtime, settings: Settings
) -> None:
    _import(runtime, settings, csv_bytes([ACTION_HEADER, "A1,C1,U1,2024-05-01 08:00,2024-05-01 09:00,P1;P2,D1,,"]))
    data = csv_bytes(
        [
            "code,name,unit,certified",
            "P1,张三,城管一中队,是",
            "P2,李四,城管一中队,协管",
            "P3,王五,,yes",
            "P4,,,maybe",
            ",nobody,,",
        ],
        "gb18030",
    )
    with transaction(runtime.sessions) as s:
        report = import_officers(s, settings, data, ACTOR, "officers.csv")
    assert (report.created, report.updated) == (1, 2)
    assert [e.line for e in report.errors] == [5, 6]
    with transaction(runtime.sessions) as s:
        a1 = s.scalar(select(Action.id).where(Action.action_id == "A1"))
        assert report.affected_actions == {a1}
        got = {o.code: (o.name, o.certified) for o in s.scalars(select(Officer))}
        assert got == {"P1": ("张三", True), "P2": ("李四", False), "P3": ("王五", True)}
        assert events(s, "import.officers")[0][1]["updated"] == 2
    # the same file again changes nothing and re-judges nothing
    with transaction(runtime.sessions) as s:
        again = import_officers(s, settings, data, ACTOR, "officers.csv")
    assert (again.unchanged, again.affected_actions) == (3, set())


def test_device_import_and_clock_offset_change_reports_affected_actions(runtime: Runtime, settings: Settings) -> None:
    _import(runtime, settings, csv_bytes([ACTION_HEADER, "A1,C1,U1,2024-05-01 08:00,2024-05-01 09:00,P1,D1,,"]))
    with transaction(runtime.sessions) as s:
        report = import_devices(
            s,
            settings,
            csv_bytes(["serial,model,unit,clock_offset_seconds", "D1,DSJ-V9,U1,-12.5", "D9,,,", "D2,,,abc"]),
            ACTOR,
            "devices.csv",
        )
        a1 = s.scalar(select(Action.id).where(Action.action_id == "A1"))
    assert (report.created, report.updated) == (1, 1)
    assert [(e.line, "not a number" in e.reason) for e in report.errors] == [(4, True)]
    assert report.affected_actions == {a1}
    with transaction(runtime.sessions) as s:
        d1 = s.scalar(select(Device).where(Device.serial == "D1"))
        assert d1 is not None and (d1.model, d1.clock_offset_seconds) == ("DSJ-V9", -12.5)
        (_, details) = events(s, "device.updated")[0]
        assert details["changes"]["clock_offset_seconds"] == {"from": 0.0, "to": -12.5}


def test_assignments_import_updates_open_ended_assignments(runtime: Runtime, shanghai: Settings) -> None:
    _import(runtime, shanghai, csv_bytes([ACTION_HEADER, "A1,C1,U1,2024-05-01 08:00,2024-05-01 09:00,P1,,,"]))
    header = "device,officer,from,to"
    with transaction(runtime.sessions) as s:
        report = import_assignments(
            s,
            shanghai,
            csv_bytes([header, "D1,P1,2024-05-01,", "D2,P1,2024-06-01 08:00,2024-05-01 08:00", "D3,P9,2024-07-01,"]),
            ACTOR,
            "assign.csv",
        )
        a1 = s.scalar(select(Action.id).where(Action.action_id == "A1"))
    assert report.created == 2
    assert [(e.line, e.reason) for e in report.errors] == [(3, "to: must be after from")]
    assert report.affected_actions == {a1}  # P1's action falls in D1's assignment; P9 has none
    with transaction(runtime.sessions) as s:
        report = import_assignments(s, shanghai, csv_bytes([header, "D1,P1,2024-05-01,2024-05-02"]), ACTOR, "b.csv")
    assert report.updated == 1
    with transaction(runtime.sessions) as s:
        d1 = s.scalar(select(Device.id).where(Device.serial == "D1"))
        rows = s.execute(
            select(DeviceAssignment.valid_from, DeviceAssignment.valid_to).where(DeviceAssignment.device_id == d1)
        ).all()
        assert [tuple(r) for r in rows] == [
            (datetime(2024, 4, 30, 16, tzinfo=UTC), datetime(2024, 5, 1, 16, tzinfo=UTC))
        ]
        assert [d["previous_to"] for _, d in events(s, "assignment.updated")] == [None]
