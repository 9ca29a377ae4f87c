"""The missing-recording report as a terminal table, JSON, CSV or XLSX (SPEC §6).

JSON is exactly the report dict (times in UTC). CSV and XLSX are for offices that live in spreadsheets:
headings in English and Simplified Chinese, times in the report's time zone, CSV with a UTF-8 BOM so that
Excel shows Chinese text correctly. Imported text that a spreadsheet would run as a formula stays text
(:mod:`audit.safe_cells`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from audit.labels import reason_label, verdict_words
from audit.safe_cells import append_row, csv_row

if TYPE_CHECKING:
    from rich.console import Console

Column = tuple[str, str, Callable[[dict[str, Any]], Any]]  # key, heading, value from a row


def _reason_zh(reason: dict[str, Any]) -> str:
    return reason_label(reason["code"], "zh") if reason.get("code") else ""


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, ensure_ascii=False, indent=2) + "\n"


def _local(tz: ZoneInfo) -> Callable[[str | None], datetime | None]:
    def convert(value: str | None) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value).astimezone(tz).replace(tzinfo=None)

    return convert


def _action_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per action and reason; an action with no reason recorded still gets one row."""
    rows = []
    for action in report["actions"]:
        for reason in action["reasons"] or [{}]:
            rows.append(action | {"reason": reason})
    return rows


def _join(values: Sequence[Any] | None) -> str:
    return ";".join(str(v) for v in values or [])


def _sections(tz: ZoneInfo) -> list[tuple[str, str, str, list[Column]]]:
    """(report key, sheet title, heading, columns) for every table of the report."""
    t = _local(tz)
    zone = f" ({tz.key})"
    action_cols: list[Column] = [
        ("action_id", "action_id 行动编号", lambda r: r["action_id"]),
        ("case_number", "case_number 案件编号", lambda r: r["case_number"]),
        ("unit", "unit 单位", lambda r: r["unit"]),
        ("started_at", f"started_at{zone} 开始时间", lambda r: t(r["started_at"])),
        ("ended_at", f"ended_at{zone} 结束时间", lambda r: t(r["ended_at"])),
        ("location", "location 地点", lambda r: r.get("location")),
        ("kind", "kind 类型", lambda r: r.get("kind")),
        ("officers", "officers 执法人员", lambda r: _join(r["officers"])),
        ("devices", "devices 执法记录仪", lambda r: _join(r["devices"])),
        ("verdict", "verdict 结论", lambda r: r["verdict"]),
        ("verdict_zh", "verdict_zh 结论说明", lambda r: verdict_words(r["verdict"], "zh")),
        ("reason", "reason 原因代码", lambda r: r["reason"].get("code")),
        ("reason_zh", "reason_zh 原因说明", lambda r: _reason_zh(r["reason"])),
        ("reason_device", "reason_device 设备", lambda r: r["reason"].get("device")),
        ("reason_recording", "reason_recording 录像编号", lambda r: r["reason"].get("recording")),
        ("gap_from", f"gap_from{zone} 缺口开始", lambda r: t(r["reason"].get("from"))),
        ("gap_to", f"gap_to{zone} 缺口结束", lambda r: t(r["reason"].get("to"))),
        ("devices_recording", "devices_recording 在录设备", lambda r: _join(r["reason"].get("devices_recording"))),
        ("recordings", "recordings 关联录像", lambda r: _join(r["recordings"])),
    ]
    unit_cols: list[Column] = [
        ("unit", "unit 单位", lambda r: r["unit"] if r["unit"] is not None else "(total 合计)"),
        ("actions", "actions 行动数", lambda r: r["actions"]),
        ("complete", "complete 完整", lambda r: r["complete"]),
        ("pending", "pending 待上传", lambda r: r["pending"]),
        ("incomplete", "incomplete 不完整", lambda r: r["incomplete"]),
        ("rate", "rate 完整率", lambda r: r["rate"]),
    ]
    recording_cols: list[Column] = [
        ("id", "recording 录像编号", lambda r: r["id"]),
        ("device", "device 执法记录仪", lambda r: r["device"]),
        ("sequence", "sequence 序号", lambda r: r["sequence"]),
        ("original_name", "original_name 原文件名", lambda r: r["original_name"]),
        ("started_at", f"started_at{zone} 开始时间", lambda r: t(r["started_at"])),
        ("ended_at", f"ended_at{zone} 结束时间", lambda r: t(r["ended_at"])),
        ("received_at", f"received_at{zone} 接收时间", lambda r: t(r["received_at"])),
    ]
    late_cols: list[Column] = [
        *recording_cols,
        ("hours_after_end", "hours_after_end 结束后小时数", lambda r: r["hours_after_end"]),
        ("hours_late", "hours_late 超时小时数", lambda r: r["hours_late"]),
    ]
    hole_cols: list[Column] = [
        ("device", "device 执法记录仪", lambda r: r["device"]),
        ("from_sequence", "from_sequence 缺失起始序号", lambda r: r["from_sequence"]),
        ("to_sequence", "to_sequence 缺失结束序号", lambda r: r["to_sequence"]),
        ("count", "count 缺失数", lambda r: r["count"]),
        ("after_recording", "after_recording 前一录像", lambda r: r["after_recording"]),
        ("after_ended_at", f"after_ended_at{zone} 前一录像结束", lambda r: t(r["after_ended_at"])),
        ("before_recording", "before_recording 后一录像", lambda r: r["before_recording"]),
        ("before_started_at", f"before_started_at{zone} 后一录像开始", lambda r: t(r["before_started_at"])),
    ]
    return [
        ("actions", "actions 行动", "Actions without full-process footage 未完整记录的执法行动", action_cols),
        ("units", "units 单位", "Per unit 按单位统计", unit_cols),
        ("late_uploads", "late uploads 迟传", "Late uploads 超时上传", late_cols),
        ("missing_files", "missing files 缺失文件", "Missing files 缺失文件", hole_cols),
        ("unclaimed", "unclaimed 未关联", "Recordings no action claims 未关联行动的录像", recording_cols),
    ]


def _rows(report: dict[str, Any], key: str) -> list[dict[str, Any]]:
    if key == "actions":
        return _action_rows(report)
    if key == "units":
        return [*report["units"], report["total"]]
    rows: list[dict[str, Any]] = report[key]
    return rows


def _tz(report: dict[str, Any]) -> ZoneInfo:
    return ZoneInfo(report.get("timezone") or "UTC")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def render_csv(report: dict[str, Any]) -> bytes:
    """The actions, one row per action and reason, UTF-8 with BOM and bilingual headings."""
    _, _, _, columns = _sections(_tz(report))[0]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([heading for _, heading, _ in columns])
    for row in _action_rows(report):
        writer.writerow(csv_row(_text(value(row)) for _, _, value in columns))
    return "\ufeff".encode() + buffer.getvalue().encode("utf-8")


def render_xlsx(report: dict[str, Any]) -> bytes:
    """A workbook with one sheet per table of the report; times are local to the report's zone."""
    # openpyxl is loaded when a workbook is made: ~0.3–0.7 s of every API worker's start-up otherwise.
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    if wb.active is not None:
        wb.remove(wb.active)
    bold = Font(bold=True)
    for key, title, _, columns in _sections(_tz(report)):
        ws = wb.create_sheet(title)
        ws.append([heading for _, heading, _ in columns])
        for cell in ws[1]:
            cell.font = bold
        for row in _rows(report, key):
            append_row(ws, (value(row) for _, _, value in columns))
        for index, (_, heading, _) in enumerate(columns, start=1):
            # datetime cells get openpyxl's date format on their own; widths keep the headings readable
            ws.column_dimensions[ws.cell(1, index).column_letter].width = max(12, min(40, len(heading) + 4))
        ws.freeze_panes = "A2"
    meta = wb.create_sheet("about 说明")
    for label, value in (
        ("from 起始日期", report.get("from")),
        ("to 截止日期", report.get("to")),
        ("unit 单位", report.get("unit")),
        ("timezone 时区", report.get("timezone")),
        ("generated_at 生成时间 (UTC)", report.get("generated_at")),
    ):
        append_row(meta, [label, value])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def render_table(report: dict[str, Any], console: Console) -> None:
    """Rich tables for a terminal: the actions with their reasons, then the other sections."""
    from rich.table import Table

    tz = _tz(report)
    period = f"{report.get('from') or '…'} – {report.get('to') or '…'} ({tz.key})"
    console.print(f"[bold]Missing-recording report 缺失录像报告[/bold] {period}", highlight=False)
    brief = {
        "actions": (
            "action_id",
            "unit",
            "started_at",
            "ended_at",
            "devices",
            "verdict",
            "reason",
            "gap_from",
            "gap_to",
        ),
        "units": ("unit", "actions", "complete", "pending", "incomplete", "rate"),
        "late_uploads": ("id", "device", "original_name", "ended_at", "received_at", "hours_late"),
        "missing_files": ("device", "from_sequence", "to_sequence", "count", "after_ended_at", "before_started_at"),
        "unclaimed": ("id", "device", "original_name", "started_at", "ended_at"),
    }
    for key, _, heading, columns in _sections(tz):
        rows = _rows(report, key)
        shown = [c for c in columns if c[0] in brief[key]]
        table = Table(title=f"{heading} ({len(report[key]) if key != 'units' else len(report['units'])})")
        for _, col_heading, _ in shown:
            table.add_column(col_heading.replace(f" ({tz.key})", ""), overflow="fold")
        for row in rows:
            cells = [_cell(key, c[0], c[2](row)) for c in shown]
            table.add_row(*cells)
        console.print(table)


def _cell(section: str, column: str, value: Any) -> str:
    if section == "units" and column == "rate" and value is not None:
        return f"{value * 100:.1f}%"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return _text(value)
