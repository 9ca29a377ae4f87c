"""``bwc devices …`` and ``bwc officers …`` (api/cli/cmd_people.py) end to end through the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from storage.db import transaction
from storage.models import Action, Device, DeviceAssignment, Officer
from storage.runtime import Runtime
from tests.fixtures.audit_data import ACTION_HEADER, csv_bytes
from tests.fixtures.cli import Invoke


@pytest.fixture
def cli(cli: Invoke, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """The shared ``cli``, reading naive CSV times in Shanghai."""
    monkeypatch.setenv("BWC_TIMEZONE", "Asia/Shanghai")
    return cli


def _reason_codes(runtime: Runtime, action_id: str) -> set[str]:
    with transaction(runtime.sessions) as s:
        action = s.scalar(select(Action).where(Action.action_id == action_id))
        assert action is not None
        return {r["code"] for r in action.reasons}


def test_officer_certification_change_rejudges_their_actions(cli: Invoke, runtime: Runtime, tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(csv_bytes([ACTION_HEADER, "A1,C1,U1,2024-05-01 08:00,2024-05-01 09:00,P1,D1;D2,,"]))
    assert cli("actions", "import", str(path)).exit_code == 0
    assert "uncertified" not in _reason_codes(runtime, "A1")  # certification not known yet

    result = cli("officers", "add", "P1", "--name", "张三", "--unit", "U1", "--auxiliary")
    assert result.exit_code == 0, result.output
    assert "1 action(s) re-judged" in result.stdout
    assert "uncertified" in _reason_codes(runtime, "A1")

    assert cli("officers", "add", "P1", "--certified").exit_code == 0
    assert "uncertified" not in _reason_codes(runtime, "A1")
    listed = json.loads(cli("officers", "list", "--format", "json").stdout)
    assert listed == [{"code": "P1", "name": "张三", "unit": "U1", "certified": True}]


def test_devices_add_import_and_list(cli: Invoke, runtime: Runtime, tmp_path: Path) -> None:
    assert cli("devices", "add", "D1", "--model", "DSJ-V9", "--unit", "U1").exit_code == 0
    assert cli("devices", "add", "D1", "--clock-offset", "-3.5").exit_code == 0
    path = tmp_path / "devices.csv"
    path.write_bytes(
        csv_bytes(["serial,model,unit,clock_offset_seconds", "D2,DSJ-V9,城管二中队,", "D3,,,x"], "utf-8-sig")
    )
    result = cli("devices", "import", str(path))
    assert result.exit_code == 2 and "line 3: clock_offset_seconds" in result.stderr
    listed = json.loads(cli("devices", "list", "--format", "json").stdout)
    assert [(d["serial"], d["model"], d["unit"], d["clock_offset_seconds"]) for d in listed] == [
        ("D1", "DSJ-V9", "U1", -3.5),
        ("D2", "DSJ-V9", "城管二中队", 0.0),
    ]
    table = cli("devices", "list")
    assert "城管二中队" in table.stdout


def test_officers_assign_and_import_assignments(cli: Invoke, runtime: Runtime, tmp_path: Path) -> None:
    result = cli("officers", "assign", "D1", "P1", "--from", "2024-05-01 08:00")
    assert result.exit_code == 0, result.output
    bad = cli("officers", "assign", "D1", "P1", "--from", "2024-05-02", "--to", "2024-05-01")
    assert bad.exit_code == 2 and "after from" in bad.stderr
    path = tmp_path / "assign.csv"
    path.write_bytes(csv_bytes(["device,officer,from,to", "D2,P2,2024-05-01,2024-06-01", "D3,P3,someday,"]))
    result = cli("officers", "import-assignments", str(path))
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
