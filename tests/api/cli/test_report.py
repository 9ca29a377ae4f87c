"""``bwc report missing`` (api/cli/cmd_report.py) in every format, with its date checks; a report is not a finding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from openpyxl import load_workbook

from storage.db import transaction
from storage.runtime import Runtime
from tests.fixtures.audit_data import action, utc
from tests.fixtures.cli import Invoke

DAY = utc(2024, 5, 1, 1)  # 09:00 in Shanghai


@pytest.fixture
def scene(runtime: Runtime, cli: Invoke, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """One incomplete action of 城管一中队 on 1 May (Shanghai) and a complete one; ``cli`` reads times there."""
    monkeypatch.setenv("BWC_TIMEZONE", "Asia/Shanghai")  # after ``cli`` cleared the environment
    with transaction(runtime.sessions) as s:
        shortfall = {"code": "shortfall", "from": "2024-05-01T01:10:00+00:00", "to": "2024-05-01T01:20:00+00:00"}
        action(
            s, "A-1", "城管一中队", DAY, "incomplete", devices=("D1",), reasons=[{"code": "too_few_devices"}, shortfall]
        )
        action(s, "A-2", "城管一中队", DAY, "complete")
    return runtime


def test_cli_report_missing(scene: Runtime, cli: Invoke, tmp_path: Path) -> None:
    as_json = cli("report", "missing", "--from", "2024-05-01", "--to", "2024-05-01", "--format", "json")
    assert as_json.exit_code == 0, as_json.output  # a non-empty report is not a finding
    data = json.loads(as_json.stdout)
    assert [a["action_id"] for a in data["actions"]] == ["A-1"]
    april = json.loads(
        cli("report", "missing", "--from", "2024-04-30", "--to", "2024-04-30", "--format", "json").stdout
    )
    assert april["actions"] == [] and april["units"] == []

    out = tmp_path / "report.xlsx"
    xlsx = cli("report", "missing", "--format", "xlsx", "--out", str(out))
    assert xlsx.exit_code == 0, xlsx.output
    assert load_workbook(out)["actions 行动"]["A2"].value == "A-1"

    as_csv = cli("report", "missing", "--unit", "城管一中队", "--format", "csv")
    assert as_csv.exit_code == 0
    assert as_csv.stdout_bytes.startswith(b"\xef\xbb\xbfaction_id")

    table = cli("report", "missing")
    assert table.exit_code == 0 and "A-1" in table.stdout

    for bad in (["--from", "2024-13-01"], ["--to", "yesterday"], ["--from", "2024-05-02", "--to", "2024-05-01"]):
        result = cli("report", "missing", *bad)
        assert result.exit_code == 2, (bad, result.output)
    unknown = cli("report", "missing", "--unit", "nobody")
    assert unknown.exit_code == 2 and "nobody" in unknown.stderr
