"""The report as JSON, CSV (BOM, bilingual), XLSX (read back) and a terminal table; and ``bwc report missing``."""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from rich.console import Console

from audit.coverage import REASON_CODES
from audit.labels import reason_label
from audit.report_formats import render_csv, render_json, render_table, render_xlsx
from audit.reports import missing_report
from config.settings import Settings
from storage.db import transaction
from storage.models import ActionRecording
from storage.runtime import Runtime
from tests.fixtures.audit_data import action, recording, utc

NOW = utc(2024, 6, 1)
DAY = utc(2024, 5, 1, 1)  # 09:00 in Shanghai
SHORTFALL = {"code": "shortfall", "from": "2024-05-01T01:10:00+00:00", "to": "2024-05-01T01:20:00+00:00"}


@pytest.fixture
def shanghai(settings: Settings) -> Settings:
    return settings.model_copy(update={"timezone": "Asia/Shanghai"})


@pytest.fixture
def stored(runtime: Runtime) -> Runtime:
    """One incomplete action with two reasons, a complete one, a late upload, a hole and an unclaimed file."""
    with transaction(runtime.sessions) as s:
        bad = action(
            s,
            "A-1",
            "城管一中队",
            DAY,
            "incomplete",
            devices=("D1",),
            reasons=[{"code": "too_few_devices"}, SHORTFALL | {"devices_recording": ["D1"]}],
            location="人民路88号",
        )
        action(s, "A-2", "城管一中队", DAY, "complete")
        first = recording(s, "D1", DAY, sequence=1)
        recording(s, "D1", DAY + timedelta(minutes=20), sequence=3, received_at=DAY + timedelta(hours=40))
        s.add(ActionRecording(action_id=bad.id, recording_id=first.id))
    return runtime


@pytest.fixture
def report(stored: Runtime, shanghai: Settings) -> dict[str, Any]:
    with transaction(stored.sessions) as s:
        return missing_report(s, shanghai, date(2024, 5, 1), date(2024, 5, 1), None, NOW)


def test_json_is_exactly_the_report(report: dict[str, Any]) -> None:
    assert json.loads(render_json(report)) == report
    assert "城管一中队" in render_json(report)  # not \u-escaped


def test_csv_has_a_bom_bilingual_headings_and_one_row_per_reason(report: dict[str, Any]) -> None:
    data = render_csv(report)
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert len(rows) == 2
    assert {r["action_id 行动编号"] for r in rows} == {"A-1"}
    assert [r["reason 原因代码"] for r in rows] == ["too_few_devices", "shortfall"]
    assert rows[1]["reason_zh 原因说明"] == "录像未覆盖全过程"
    assert rows[0]["unit 单位"] == "城管一中队" and rows[0]["location 地点"] == "人民路88号"
    assert rows[0]["started_at (Asia/Shanghai) 开始时间"] == "2024-05-01 09:00:00"
    assert rows[1]["gap_from (Asia/Shanghai) 缺口开始"] == "2024-05-01 09:10:00"
    assert rows[1]["devices_recording 在录设备"] == "D1"


def test_xlsx_reads_back_with_chinese_text_and_local_times(report: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    path.write_bytes(render_xlsx(report))
    wb = load_workbook(path)
    assert wb.sheetnames == [
        "actions 行动",
        "units 单位",
        "late uploads 迟传",
        "missing files 缺失文件",
        "unclaimed 未关联",
        "about 说明",
    ]
    actions = [list(r) for r in wb["actions 行动"].iter_rows(values_only=True)]
    head = actions[0]
    assert head[0] == "action_id 行动编号" and "unit 单位" in head
    first = dict(zip(head, actions[1], strict=True))
    assert first["unit 单位"] == "城管一中队" and first["location 地点"] == "人民路88号"
    assert first["started_at (Asia/Shanghai) 开始时间"] == datetime(2024, 5, 1, 9, 0)
    assert len(actions) == 3  # heading + one row per reason
    units = [list(r) for r in wb["units 单位"].iter_rows(values_only=True)]
    assert units[1][:6] == ["城管一中队", 2, 1, 0, 1, 0.5]
    assert units[-1][0] == "(total 合计)"
    late = list(wb["late uploads 迟传"].iter_rows(values_only=True))
    assert len(late) == 2 and late[1][1] == "D1"
    holes = list(wb["missing files 缺失文件"].iter_rows(values_only=True))
    assert holes[1][:4] == ("D1", 2, 2, 1)


def test_every_reason_code_has_its_chinese_words_in_csv_and_xlsx(runtime: Runtime, settings: Settings) -> None:
    with transaction(runtime.sessions) as s:
        action(s, "A-9", "城管二中队", DAY, "incomplete", reasons=[{"code": code} for code in REASON_CODES])
    with transaction(runtime.sessions) as s:
        report = missing_report(s, settings, date(2024, 5, 1), date(2024, 5, 1), None, NOW)
    rows = list(csv.DictReader(io.StringIO(render_csv(report).decode("utf-8-sig"))))
    by_code = {r["reason 原因代码"]: r["reason_zh 原因说明"] for r in rows}
    assert by_code == {code: reason_label(code, "zh") for code in REASON_CODES}
    assert by_code["no_video"] == "录像无图像"
    sheet = load_workbook(io.BytesIO(render_xlsx(report)))["actions 行动"]
    header = [c.value for c in sheet[1]]
    code_col, words_col = header.index("reason 原因代码"), header.index("reason_zh 原因说明")
    cells = {row[code_col]: row[words_col] for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert cells == by_code


def test_table_names_every_section(report: dict[str, Any]) -> None:
    console = Console(record=True, width=240)
    render_table(report, console)
    text = console.export_text()
    for needle in ("A-1", "城管一中队", "shortfall", "50.0%", "Late uploads", "Missing files", "no action claims"):
        assert needle in text
