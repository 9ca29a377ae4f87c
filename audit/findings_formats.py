"""The work ledger (工作台账) as CSV, XLSX, JSON and a terminal table, with Chinese headings (SPEC §13).

CSV: the findings, one a row, UTF-8 with a BOM (Excel shows Chinese text), then the per-unit tallies after a
blank line. XLSX: a sheet of findings and a sheet per unit (open / overdue / closed in time / closed late).
Times in ``BWC_TIMEZONE``. Every cell goes through :mod:`audit.safe_cells`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from audit.labels import FINDING_STATUSES
from audit.safe_cells import append_row, csv_row

if TYPE_CHECKING:
    from rich.console import Console

Column = tuple[str, Callable[[dict[str, Any]], Any]]

STATUS_ZH = FINDING_STATUSES["zh"]


def _local(value: str | None, tz: ZoneInfo) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).astimezone(tz).replace(tzinfo=None)


def _last_note(f: dict[str, Any]) -> str | None:
    for line in reversed(f["history"]):
        if line.get("note") or line.get("reason"):
            return str(line.get("note") or line.get("reason"))
    return None


def finding_columns(tz: ZoneInfo) -> list[Column]:
    zone = f" ({tz.key})"
    return [
        ("编号 id", lambda f: f["id"]),
        ("问题类型 kind", lambda f: f["kind"]),
        ("类别 category", lambda f: f["category"]),
        ("对象 subject", lambda f: f["subject"]),
        ("单位 unit", lambda f: f["unit"]),
        ("状态 status", lambda f: f"{STATUS_ZH.get(f['status'], f['status'])} {f['status']}"),
        ("责任人 owner", lambda f: f["owner"]),
        (f"发现时间 opened_at{zone}", lambda f: _local(f["opened_at"], tz)),
        (f"整改期限 due_at{zone}", lambda f: _local(f["due_at"], tz)),
        (f"销号时间 closed_at{zone}", lambda f: _local(f["closed_at"], tz)),
        ("是否超期 overdue", lambda f: "是 yes" if f["overdue"] else "否 no"),
        ("按期销号 closed_in_time", lambda f: {True: "是 yes", False: "否 no", None: ""}[f["closed_in_time"]]),
        ("整改说明 note", _last_note),
    ]


UNIT_COLUMNS: list[Column] = [
    ("单位 unit", lambda r: r["unit"] if r["unit"] is not None else "合计 total"),
    ("未销号 open", lambda r: r["open"]),
    ("超期 overdue", lambda r: r["overdue"]),
    ("按期销号 closed in time", lambda r: r["closed_in_time"]),
    ("超期销号 closed late", lambda r: r["closed_late"]),
    ("免于整改 waived", lambda r: r["waived"]),
]


def _text(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value


def render_json(ledger: dict[str, Any]) -> str:
    return json.dumps(ledger, ensure_ascii=False, indent=2) + "\n"


def render_csv(ledger: dict[str, Any]) -> bytes:
    tz = ZoneInfo(ledger["timezone"])
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    columns = finding_columns(tz)
    writer.writerow([h for h, _ in columns])
    for f in ledger["findings"]:
        writer.writerow(csv_row(_text(value(f)) for _, value in columns))
    writer.writerow([])
    writer.writerow([h for h, _ in UNIT_COLUMNS])
    for row in ledger["units"]:
        writer.writerow(csv_row(_text(value(row)) for _, value in UNIT_COLUMNS))
    return "\ufeff".encode() + buffer.getvalue().encode("utf-8")


def render_xlsx(ledger: dict[str, Any]) -> bytes:
    # openpyxl is loaded when a workbook is made: ~0.3–0.7 s of every API worker's start-up otherwise.
    from openpyxl import Workbook
    from openpyxl.styles import Font

    tz = ZoneInfo(ledger["timezone"])
    wb = Workbook()
    if wb.active is not None:
        wb.remove(wb.active)
    bold = Font(bold=True)
    for title, columns, rows in (
        ("工作台账 findings", finding_columns(tz), ledger["findings"]),
        ("按单位 per unit", UNIT_COLUMNS, ledger["units"]),
    ):
        ws = wb.create_sheet(title)
        ws.append([h for h, _ in columns])
        for cell in ws[1]:
            cell.font = bold
        for row in rows:
            append_row(ws, (value(row) for _, value in columns))
        for index, (heading, _) in enumerate(columns, start=1):
            ws.column_dimensions[ws.cell(1, index).column_letter].width = max(12, min(40, len(heading) + 4))
        ws.freeze_panes = "A2"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def render_table(ledger: dict[str, Any], console: Console) -> None:
    from rich.table import Table

    tz = ZoneInfo(ledger["timezone"])
    table = Table(title=f"工作台账 Findings ({len(ledger['findings'])})")
    shown = ("编号 id", "问题类型 kind", "对象 subject", "单位 unit", "状态 status", "是否超期 overdue")
    columns = [c for c in finding_columns(tz) if c[0] in shown or c[0].startswith("整改期限")]
    for heading, _ in columns:
        table.add_column(heading.replace(f" ({tz.key})", ""), overflow="fold")
    for f in ledger["findings"]:
        table.add_row(*(str(_text(value(f))) for _, value in columns))
    console.print(table)
    units = Table(title="按单位 Per unit")
    for heading, _ in UNIT_COLUMNS:
        units.add_column(heading)
    for row in ledger["units"]:
        units.add_row(*(str(_text(value(row))) for _, value in UNIT_COLUMNS))
    console.print(units)
