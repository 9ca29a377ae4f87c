"""The period report as a workbook: a summary with the trend chart, reasons, devices, officers, and the
actions behind every unit's totals (the drill-down; each unit's name on the summary links to its rows).

Every row goes through ``audit.safe_cells.append_row``: text a spreadsheet would run as a formula stays text
(OWASP CSV injection), the one rule every CSV and XLSX the product writes follows.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.chart import BarChart, Reference
from openpyxl.chart.series import SeriesLabel
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from audit.labels import reason_label, verdict_words
from audit.period_report import Breakdown, PeriodReport, UnitSection
from audit.period_words import words
from audit.safe_cells import append_row

SHEETS = ("summary 概览", "reasons 原因", "devices 设备", "officers 人员", "actions 行动明细")
BOLD = Font(bold=True)


def _append(ws: Worksheet, values: Sequence[Any], bold: bool = False) -> None:
    append_row(ws, values)
    if bold:
        for c in ws[ws.max_row]:
            c.font = BOLD


def _unit_name(unit: str | None, w: dict[str, str]) -> str:
    return unit if unit is not None else w["no_unit"]


def _local(at: datetime, tz: ZoneInfo) -> datetime:
    return at.astimezone(tz).replace(tzinfo=None)


def _summary(ws: Worksheet, report: PeriodReport, w: dict[str, str], drill_rows: dict[str | None, int]) -> None:
    p, q = report.period, report.previous
    _append(ws, [w["title"]], bold=True)
    for label, value in (
        (w["period"], f"{p.start} – {p.end}"),
        (w["previous"], f"{q.start} – {q.end}"),
        (w["unit"], report.unit or w["all_units"]),
        (w["timezone"], report.timezone),
        (w["generated"], report.generated_at.isoformat()),
    ):
        _append(ws, [label, value])
    _append(ws, [])
    _append(ws, [w["per_unit"]], bold=True)
    heads = ["unit", "actions", "complete", "pending", "incomplete", "rate", "prev_actions", "prev_rate"]
    heads += ["change", "recordings", "late", "late_rate"]
    if report.findings_available:
        heads += ["opened", "closed_in_time", "closed_late", "overdue"]
    _append(ws, [w[h] for h in heads], bold=True)
    first = ws.max_row + 1
    for section in (*report.units, report.total):
        _unit_row(ws, section, w, report.findings_available, section is report.total)
        row = drill_rows.get(section.unit)
        if section is not report.total and row is not None:
            ws.cell(ws.max_row, 1).hyperlink = f"#'{SHEETS[4]}'!A{row}"
    last = ws.max_row - 1  # the chart shows the units, not the total
    for r in range(first, ws.max_row + 1):
        for col in (6, 8, 12):
            ws.cell(r, col).number_format = "0.0%"
    _append(ws, [])
    a = report.attribution
    note = w["attribution"].format(
        late=a.late_without_unit, action=a.via_action, assignment=a.via_assignment, none=a.unattributed
    )
    _append(ws, [w["uploads"], note])
    if not report.findings_available:
        _append(ws, [w["findings"], w["no_findings"]])
    if last >= first:
        _chart(ws, first, last, w)
    ws.column_dimensions["A"].width = 24


def _unit_row(ws: Worksheet, s: UnitSection, w: dict[str, str], findings: bool, total: bool) -> None:
    c, b = s.current, s.previous
    values: list[Any] = [w["total"] if total else _unit_name(s.unit, w), c.actions, c.complete, c.pending]
    values += [c.incomplete, c.rate, b.actions, b.rate, s.change, s.uploads.recordings, s.uploads.late]
    values.append(s.uploads.late_rate)
    if findings:
        f = s.findings
        values += [f.opened, f.closed_in_time, f.closed_late, f.overdue] if f else [None] * 4
    _append(ws, values, bold=total)


def _chart(ws: Worksheet, first: int, last: int, w: dict[str, str]) -> None:
    chart = BarChart()
    chart.type = "col"
    chart.title = w["trend"]
    chart.y_axis.title = w["rate"]
    chart.y_axis.numFmt = "0%"
    chart.y_axis.scaling.min = 0
    chart.y_axis.scaling.max = 1
    for col, title in ((6, w["this_period"]), (8, w["previous"])):
        chart.add_data(Reference(ws, min_col=col, min_row=first, max_row=last))
        chart.series[-1].tx = SeriesLabel(v=title)
    chart.set_categories(Reference(ws, min_col=1, min_row=first, max_row=last))
    chart.width, chart.height = 18, 9
    ws.add_chart(chart, f"N{first}")


def _reasons(ws: Worksheet, report: PeriodReport, w: dict[str, str], lang: str) -> None:
    _append(ws, [w["unit"], w["reason"], "code", w["count"]], bold=True)
    for s in (*report.units, report.total):
        name = w["total"] if s is report.total else _unit_name(s.unit, w)
        for code, n in s.reasons:
            _append(ws, [name, reason_label(code, lang), code, n])


def _breakdowns(ws: Worksheet, rows: Sequence[Breakdown], w: dict[str, str], key: str, none: str) -> None:
    heads = [w[key], w["actions"], w["complete"], w["pending"], w["incomplete"], w["rate"]]
    if key == "device":
        heads += [w["recordings"], w["late"], w["late_rate"]]
    _append(ws, heads, bold=True)
    for row, b in enumerate(rows, start=2):
        c = b.current
        values: list[Any] = [b.key if b.key is not None else none, c.actions, c.complete, c.pending, c.incomplete]
        values.append(c.rate)
        if key == "device":
            values += [b.uploads.recordings, b.uploads.late, b.uploads.late_rate]
        _append(ws, values)
        ws.cell(row, 6).number_format = "0.0%"
    ws.column_dimensions["A"].width = 24


def _actions(ws: Worksheet, report: PeriodReport, w: dict[str, str], lang: str) -> dict[str | None, int]:
    """The drill-down rows; returns the first row of each unit's actions."""
    tz = ZoneInfo(report.timezone)
    heads = ["unit", "action_id", "started", "verdict", "reason", "devices", "carriers", "location"]
    _append(ws, [w[h] if h != "started" else f"{w['started']} ({tz.key})" for h in heads], bold=True)
    first: dict[str | None, int] = {}
    for row, a in enumerate(report.actions, start=2):  # ``ws.max_row`` scans every cell: count rows here
        first.setdefault(a.unit, row)
        reasons = "; ".join(reason_label(code, lang) for code in a.reasons)
        _append(
            ws,
            [
                _unit_name(a.unit, w),
                a.action_id,
                _local(a.started_at, tz),
                verdict_words(None if a.verdict == "unjudged" else a.verdict, lang),
                reasons,
                ", ".join(a.devices),
                ", ".join(a.carriers),
                a.location,
            ],
        )
    ws.freeze_panes = "A2"
    for col, width in zip("ABCDEFGH", (20, 20, 20, 12, 30, 20, 20, 30), strict=True):
        ws.column_dimensions[col].width = width
    return first


def render_period_xlsx(report: PeriodReport, lang: str) -> bytes:
    """The workbook's bytes; sheet names are bilingual, the contents in ``lang``."""
    w = words(lang)
    wb = Workbook()
    if wb.active is not None:
        wb.remove(wb.active)
    summary, reasons, devices, officers, actions = (wb.create_sheet(title) for title in SHEETS)
    drill_rows = _actions(actions, report, w, lang)
    _summary(summary, report, w, drill_rows)
    _reasons(reasons, report, w, lang)
    _breakdowns(devices, report.devices, w, "device", w["no_device"])
    _breakdowns(officers, report.officers, w, "officer", w["no_assignment"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
