"""Spreadsheet cells that cannot run as formulas (OWASP "CSV injection"), for every CSV and XLSX we write.

Imported fields (a location, a file name) are untrusted: a cell starting with ``= + - @``, a tab or a CR is
taken by a spreadsheet as a formula (``=HYPERLINK(...)`` becomes a live link). In CSV such a text gets a
leading single quote, OWASP's rule; in XLSX it is written as a text cell with its value unchanged, which no
spreadsheet evaluates. Numbers and dates are left alone: a negative number is a number, not a formula.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openpyxl.worksheet._write_only import WriteOnlyWorksheet
    from openpyxl.worksheet.worksheet import Worksheet

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def risky(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(TRIGGERS)


def csv_cell(value: Any) -> Any:
    """The value for a CSV writer: a risky text prefixed with ``'``."""
    return "'" + value if risky(value) else value


def csv_row(values: Iterable[Any]) -> list[Any]:
    return [csv_cell(v) for v in values]


def safe_cells(ws: Worksheet | WriteOnlyWorksheet, values: Iterable[Any]) -> list[Any]:
    """The row for ``ws.append``: each risky text a cell typed as text (openpyxl would make it a formula).

    Either kind of worksheet takes it, the write-only one of a large workbook too.
    """
    from openpyxl.cell import WriteOnlyCell  # loaded with the workbook (see audit.report_formats)

    row: list[Any] = []
    for value in values:
        if risky(value):
            cell = WriteOnlyCell(ws, value)
            cell.data_type = "s"
            value = cell
        row.append(value)
    return row


def append_row(ws: Worksheet | WriteOnlyWorksheet, values: Iterable[Any]) -> None:
    """``ws.append`` of :func:`safe_cells`."""
    ws.append(safe_cells(ws, values))
