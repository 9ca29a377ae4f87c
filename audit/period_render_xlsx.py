"""The period report as a workbook: a summary with the trend chart, reasons, devices, officers, and the
actions behind every unit's totals (the drill-down; each unit's name on the summary links to its rows).

Every row goes through ``audit.safe_cells.safe_cells``: text a spreadsheet would run as a formula stays text
(OWASP CSV injection), the one rule every CSV and XLSX the product writes follows.

A year at city scale is some 100,000 action rows: the workbook is written in openpyxl's write-only mode
(rows streamed out as they come, never kept as cell objects), styles only on headings, totals and rate
columns, and each sheet counts its own rows (a worksheet's ``max_row`` scans every cell it holds).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.cell import Cell, WriteOnlyCell
from openpyxl.chart import BarChart, Reference
from openpyxl.chart.series import SeriesLabel
from openpyxl.styles import Font
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from audit.labels import reason_label, verdict_words
from audit.period_report import Breakdown, PeriodReport, UnitSection
from audit.period_words import words
from audit.safe_cells import safe_cells

SHEETS = ("summary 概览", "reasons 原因", "devices 设备", "officers 人员", "actions 行动明细")
BOLD = Font(bold=True)
PERCENT = "0.0%"


class Rows:
    """A write-only sheet and the number of rows written to it."""

    def __init__(self, ws: WriteOnlyWorksheet) -> None:
        self.ws = ws
        self.count = 0

    def append(
        self, values: Sequence[Any], bold: bool = False, percent: Sequence[int] = (), link: str | None = None
    ) -> int:
        """Write a row (``percent``: 1-based columns shown as rates; ``link``: the first cell's hyperlink)."""
        cells = safe_cells(self.ws, values)
        if bold or percent or link:
            for index, value in enumerate(cells):
                if value is None:
                    continue
                cell = value if isinstance(value, Cell) else WriteOnlyCell(self.ws, value)
                if bold:
                    cell.font = BOLD
                if index + 1 in percent:
                    cell.number_format = PERCENT
                if link is not None and index == 0:
                    cell.hyperlink = link
                cells[index] = cell
        self.ws.append(cells)
        self.count += 1
        return self.count


def _unit_name(unit: str | None, w: dict[str, str]) -> str:
    return unit if unit is not None else w["no_unit"]


def _local(at: datetime, tz: ZoneInfo) -> datetime:
    return at.astimezone(tz).replace(tzinfo=None)


def _summary(out: Rows, report: PeriodReport, w: dict[str, str], drill_rows: dict[str | None, int]) -> None:
    p, q = report.period, report.previous
    out.ws.column_dimensions["A"].width = 24
    out.append([w["title"]], bold=True)
    for label, value in (
        (w["period"], f"{p.start} – {p.end}"),
        (w["previous"], f"{q.start} – {q.end}"),
        (w["unit"], report.unit or w["all_units"]),
        (w["timezone"], report.timezone),
        (w["generated"], report.generated_at.isoformat()),
    ):
        out.append([label, value])
    out.append([])
    out.append([w["per_unit"]], bold=True)
    heads = ["unit", "actions", "complete", "pending", "incomplete", "rate", "prev_actions", "prev_rate"]
    heads += ["change", "recordings", "late", "late_rate"]
    if report.findings_available:
        heads += ["opened", "closed_in_time", "closed_late", "overdue"]
    out.append([w[h] for h in heads], bold=True)
    first = out.count + 1
    for section in (*report.units, report.total):
        total = section is report.total
        row = None if total else drill_rows.get(section.unit)
        link = None if row is None else f"#'{SHEETS[4]}'!A{row}"
        _unit_row(out, section, w, report.findings_available, total, link)
    last = out.count - 1  # the chart shows the units, not the total
    out.append([])
    a = report.attribution
    note = w["attribution"].format(
        late=a.late_without_unit, action=a.via_action, assignment=a.via_assignment, none=a.unattributed
    )
    out.append([w["uploads"], note])
    if not report.findings_available:
        out.append([w["findings"], w["no_findings"]])
    if last >= first:
        _chart(out.ws, first, last, w)


def _unit_row(out: Rows, s: UnitSection, w: dict[str, str], findings: bool, total: bool, link: str | None) -> None:
    c, b = s.current, s.previous
    values: list[Any] = [w["total"] if total else _unit_name(s.unit, w), c.actions, c.complete, c.pending]
    values += [c.incomplete, c.rate, b.actions, b.rate, s.change, s.uploads.recordings, s.uploads.late]
    values.append(s.uploads.late_rate)
    if findings:
        f = s.findings
        values += [f.opened, f.closed_in_time, f.closed_late, f.overdue] if f else [None] * 4
    out.append(values, bold=total, percent=(6, 8, 12), link=link)


def _chart(ws: WriteOnlyWorksheet, first: int, last: int, w: dict[str, str]) -> None:
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


def _reasons(out: Rows, report: PeriodReport, w: dict[str, str], lang: str) -> None:
    out.append([w["unit"], w["reason"], "code", w["count"]], bold=True)
    for s in (*report.units, report.total):
        name = w["total"] if s is report.total else _unit_name(s.unit, w)
        for code, n in s.reasons:
            out.append([name, reason_label(code, lang), code, n])


def _breakdowns(out: Rows, rows: Sequence[Breakdown], w: dict[str, str], key: str, none: str) -> None:
    out.ws.column_dimensions["A"].width = 24
    heads = [w[key], w["actions"], w["complete"], w["pending"], w["incomplete"], w["rate"]]
    if key == "device":
        heads += [w["recordings"], w["late"], w["late_rate"]]
    out.append(heads, bold=True)
    for b in rows:
        c = b.current
        values: list[Any] = [b.key if b.key is not None else none, c.actions, c.complete, c.pending, c.incomplete]
        values.append(c.rate)
        if key == "device":
            values += [b.uploads.recordings, b.uploads.late, b.uploads.late_rate]
        out.append(values, percent=(6,))


def drill_rows(report: PeriodReport) -> dict[str | None, int]:
    """The first row of each unit's actions on the actions sheet (its heading is row 1)."""
    first: dict[str | None, int] = {}
    for row, a in enumerate(report.actions, start=2):
        first.setdefault(a.unit, row)
    return first


def _actions(out: Rows, report: PeriodReport, w: dict[str, str], lang: str) -> None:
    """The drill-down rows, in the order :func:`drill_rows` counts them."""
    tz = ZoneInfo(report.timezone)
    out.ws.freeze_panes = "A2"  # a write-only sheet writes its views and widths before its first row
    for col, width in zip("ABCDEFGH", (20, 20, 20, 12, 30, 20, 20, 30), strict=True):
        out.ws.column_dimensions[col].width = width
    heads = ["unit", "action_id", "started", "verdict", "reason", "devices", "carriers", "location"]
    out.append([w[h] if h != "started" else f"{w['started']} ({tz.key})" for h in heads], bold=True)
    verdicts = {v: verdict_words(None if v == "unjudged" else v, lang) for v in {a.verdict for a in report.actions}}
    for a in report.actions:
        out.append(
            [
                _unit_name(a.unit, w),
                a.action_id,
                _local(a.started_at, tz),
                verdicts[a.verdict],
                "; ".join(reason_label(code, lang) for code in a.reasons) or None,  # None: no cell written
                ", ".join(a.devices) or None,
                ", ".join(a.carriers) or None,
                a.location,
            ]
        )


def render_period_xlsx(report: PeriodReport, lang: str) -> bytes:
    """The workbook's bytes; sheet names are bilingual, the contents in ``lang``."""
    w = words(lang)
    wb = Workbook(write_only=True)
    summary, reasons, devices, officers, actions = (Rows(wb.create_sheet(title)) for title in SHEETS)
    _summary(summary, report, w, drill_rows(report))
    _reasons(reasons, report, w, lang)
    _breakdowns(devices, report.devices, w, "device", w["no_device"])
    _breakdowns(officers, report.officers, w, "officer", w["no_assignment"])
    _actions(actions, report, w, lang)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
