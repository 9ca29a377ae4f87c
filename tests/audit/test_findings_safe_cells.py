"""A formula in an imported field stays text in every spreadsheet we write (OWASP CSV injection), here in the
missing-recording report; the ledger's own check is in test_findings_ledger.py."""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from openpyxl import load_workbook

from audit.report_formats import render_csv, render_xlsx
from audit.reports import missing_report
from audit.safe_cells import csv_cell, risky
from storage.db import transaction
from storage.runtime import Runtime
from tests.fixtures.audit_data import action, utc

FORMULA = '=HYPERLINK("http://evil.example/","人民路")'


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"])
def test_every_trigger_is_neutralised_in_csv(text: str) -> None:
    assert risky(text) and csv_cell(text) == "'" + text


def test_plain_values_are_left_alone() -> None:
    assert [csv_cell(v) for v in ("人民路88号", "a=b", -1, 2.5, None)] == ["人民路88号", "a=b", -1, 2.5, None]


def test_a_formula_location_stays_text_in_the_missing_report(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as s:
        action(s, "A-1", "城管一中队", utc(2024, 5, 1, 1), "incomplete", location=FORMULA)
        report = missing_report(s, runtime.settings, date(2024, 5, 1), date(2024, 5, 1), None, utc(2024, 6, 1))
    rows = list(csv.reader(io.StringIO(render_csv(report).decode("utf-8-sig"))))
    assert "'" + FORMULA in rows[1] and FORMULA not in rows[1]
    ws = load_workbook(io.BytesIO(render_xlsx(report)))["actions 行动"]
    [cell] = [c for row in ws.iter_rows() for c in row if c.value == FORMULA]
    assert cell.data_type == "s"
