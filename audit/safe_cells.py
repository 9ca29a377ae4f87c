"""Spreadsheet cells that cannot run as formulas (OWASP "CSV injection"), for every CSV and XLSX we write.

Imported fields (a location, a file name) are untrusted: a cell starting with ``= + - @``, a tab or a CR is
taken by a spreadsheet as a formula (``=HYPERLINK(...)`` becomes a live link). In CSV such a text gets a
leading single quote, OWASP's rule; in XLSX it is written as a text cell with its value unchanged, which no
spreadsheet evaluates. Numbers and dates are left alone: a negative number is a number, not a formula.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from openpyxl.worksheet.worksheet import Worksheet

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def risky(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(TRIGGERS)


def csv_cell(value: Any) -> Any:
    """The value for a CSV writer: a risky text prefixed with ``'``."""
    return "'" + value if risky(value) else value


def csv_row(values: Iterable[Any]) -> list[Any]:
    return [csv_cell(v) for v in values]


def append_row(ws: Worksheet, values: Iterable[Any]) -> None:
    """``ws.append`` with every risky text stored as a text cell (openpyxl would make it a formula)."""
    values = list(values)
    ws.append(["" if risky(v) else v for v in values])
    row = ws.max_row
    for index, value in enumerate(values, start=1):
        if risky(value):
            cell = ws.cell(row, index)
            cell.value = value
            cell.data_type = "s"
