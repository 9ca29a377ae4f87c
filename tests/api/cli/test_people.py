"""``bwc actions import``, ``bwc devices …`` and ``bwc officers …`` end to end through the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner, Result

from config.settings import Settings, get_settings
from storage.db import transaction
from storage.models import Action, Device, DeviceAssignment, Officer
from storage.runtime import Runtime
from tests.fixtures.audit_data import ACTION_HEADER, csv_bytes, events


@pytest.fixture
def cli(settings: Settings, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("BWC_HOME", str(settings.home))
    monkeypatch.setenv("BWC_DATABASE_URL", settings.db_url)
    monkeypatch.setenv("BWC_TIMEZONE", "Asia/Shanghai")
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def _bwc(cli: CliRunner, *args: str) -> Result:
    from api.cli.main import app

    return cli.invoke(app, list(args))


def _reason_codes(runtime: Runtime, action_id: str) -> set[str]:
    with transaction(runtime.sessions) as s:
        action = s.scalar(select(Action).where(Action.action_id == action_id))
        assert action is not None
        return {r["code"] for r in action.reasons}


def test_actions_import_keeps_good_rows_and_exits_2_naming_bad_lines(
    cli: CliRunner, runtime: Runtime, tmp_path: Path
) -> None:
    path = tmp_path / "行动.csv"
    path.write_bytes(
        csv_bytes(
            [
                ACTION_HEADER,
                "A1,C1,城管一中队,2024-05-01 08:00,2024-05-01 09:00,P1,D1;D2,人民路,巡查",
                "A2,C1,城管一中队,2024-05-01 09:00,2024-05-01 08:00,P1,D1,,",
            ],
            "gb18030",
        )
    )
    result = _bwc(cli, "actions", "import", str(path))
    assert result.exit_code == 2
    assert "line 3: ended_at" in result.stderr
    assert "1 created" in result.stdout
    with transaction(runtime.sessions) as s:
        a1 = s.scalar(select(Action).where(Action.action_id == "A1"))
        assert a1 is not None and a1.started_at == datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
        assert a1.verdict is not None  # re-judged in the same command
        assert events(s, "import.actions")[0][0] == "file:行动.csv"

    path.write_bytes(
        csv_bytes([ACTION_HEADER, "A1,C1,城管一中队,2024-05-01 08:00,2024-05-01 09:00,P1,D1;D2,人民路,巡查"])
    )
    again = _bwc(cli, "actions", "import", str(path), "--format", "json")
    assert again.exit_code == 0
    assert json.loads(again.stdout) == {
        "file": "行动.csv",
        "created": 0,
        "updated": 0,
        "unchanged": 1,
        "errors": [],
    }
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("id,when\n1,2\n")
    result = _bwc(cli, "actions", "import", str(bad_header))
    assert result.exit_code == 2 and "bad header" in result.stderr
    assert _bwc(cli, "actions", "import", str(tmp_path / "absent.csv")).exit_code == 2


def test_officer_certification_change_rejudges_their_actions(cli: CliRunner, runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(csv_bytes([ACTION_HEADER, "A1,C1,U1,2024-05-01 08:00,2024-05-01 09:00,P1,D1;D2,,"]))
    assert _bwc(cli, "actions", "import", str(path)).exit_code == 0
    assert "uncertified" not in _reason_codes(runtime, "A1")  # certification not known yet

    result = _bwc(cli, "officers", "add", "P1", "--name", "张三", "--unit", "U1", "--auxiliary")
    assert result.exit_code == 0, result.output
    assert "1 action(s) re-judged" in result.stdout
    assert "uncertified" in _reason_codes(runtime, "A1")

    assert _bwc(cli, "officers", "add", "P1", "--certified").exit_code == 0
    assert "uncertified" not in _reason_codes(runtime, "A1")
    listed = json.loads(_bwc(cli, "officers", "list", "--format", "json").stdout)
    assert listed == [{"code": "P1", "name": "张三", "unit": "U1", "certified": True}]


def test_devices_add_import_and_list(cli: CliRunner, runtime: Runtime, tmp_path: Path) -> None:
    assert _bwc(cli, "devices", "add", "D1", "--model", "DSJ-V9", "--unit", "U1").exit_code == 0
    assert _bwc(cli, "devices", "add", "D1", "--clock-offset", "-3.5").exit_code == 0
    path = tmp_path / "devices.csv"
    path.write_bytes(
        csv_bytes(["serial,model,unit,clock_offset_seconds", "D2,DSJ-V9,城管二中队,", "D3,,,x"], "utf-8-sig")
    )
    result = _bwc(cli, "devices", "import", str(path))
    assert result.exit_code == 2 and "line 3: clock_offset_seconds" in result.stderr
    listed = json.loads(_bwc(cli, "devices", "list", "--format", "json").stdout)
    assert [(d["serial"], d["model"], d["unit"], d["clock_offset_seconds"]) for d in listed] == [
        ("D1", "DSJ-V9", "U1", -3.5),
        ("D2", "DSJ-V9", "城管二中队", 0.0),
    ]
    table = _bwc(cli, "devices", "list")
    assert "城管二中队" in table.stdout


def test_officers_assign_and_import_assignments(cli: CliRunner, runtime: Runtime, tmp_path: Path) -> None:
    result = _bwc(cli, "officers", "assign", "D1", "P1", "--from", "2024-05-01 08:00")
    assert result.exit_code == 0, result.output
    bad = _bwc(cli, "officers", "assign", "D1", "P1", "--from", "2024-05-02", "--to", "2024-05-01")
    assert bad.exit_code == 2 and "after from" in bad.stderr
    path = tmp_path / "assign.csv"
    path.write_bytes(csv_bytes(["device,officer,from,to", "D2,P2,2024-05-01,2024-06-01", "D3,P3,someday,"]))
    result = _bwc(cli, "officers", "import-assignments", str(path))
    assert result.exit_code == 2 and "line 3: from" in result.stderr
    with transaction(runtime.sessions) as s:
        rows = s.execute(
            select(Device.serial, Officer.code, DeviceAssignment.valid_from, DeviceAssignment.valid_to)
            .join(Device, Device.id == DeviceAssignment.device_id)
            .join(Officer, Officer.id == DeviceAssignment.officer_id)
            .order_by(Device.serial)
        ).all()
    assert [tuple(r) for r in rows] == [
        ("D1", "P1", datetime(2024, 5, 1, 0, 0, tzinfo=UTC), None),
        ("D2", "P2", datetime(2024, 4, 30, 16, 0, tzinfo=UTC), datetime(2024, 5, 31, 16, 0, tzinfo=UTC)),
    ]
