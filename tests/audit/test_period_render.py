"""The period report's XLSX (read back with openpyxl) and PDF (read back with poppler's pdftotext)."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pytest
from openpyxl import load_workbook

from audit.period_query import period_report
from audit.period_render_pdf import render_period_pdf
from audit.period_render_xlsx import SHEETS, render_period_xlsx
from audit.period_report import PeriodReport
from storage.db import reading
from storage.runtime import Runtime
from tests.fixtures.period_data import FORMULA, MAY, NOW, U1, build_scene


@pytest.fixture
def report(runtime: Runtime) -> PeriodReport:
    build_scene(runtime)
    with reading(runtime.sessions) as s:
        return period_report(s, runtime.settings, *MAY, None, NOW)


def pdf_text(body: bytes, tmp_path: Path) -> str:
    assert body.startswith(b"%PDF-")
    pdftotext = shutil.which("pdftotext")
    assert pdftotext, "poppler-utils is missing: make setup installs it"
    path = tmp_path / "report.pdf"
    path.write_bytes(body)
    done = subprocess.run([pdftotext, "-layout", str(path), "-"], capture_output=True, text=True, check=True)
    return done.stdout


def test_xlsx_sheets_figures_chart_and_drill_down(report: PeriodReport) -> None:
    wb = load_workbook(io.BytesIO(render_period_xlsx(report, "zh")))
    assert wb.sheetnames == list(SHEETS)
    summary = wb[SHEETS[0]]
    rows = [[c.value for c in row] for row in summary.iter_rows()]
    assert rows[0][0] == "执法记录仪使用情况书面报告"
    heads = next(r for r in rows if r[:2] == ["单位", "行动数"])
    assert heads[:6] == ["单位", "行动数", "完整", "待上传", "不完整", "全过程记录率"]
    by_unit = {r[0]: r for r in rows[rows.index(heads) + 1 :] if r[0] in ("U2", U1, "（无单位）", "合计")}
    assert by_unit[U1][1:9] == [3, 1, 0, 2, 0.3333, 2, 1.0, -0.6667]
    assert by_unit[U1][9:12] == [3, 2, 0.6667]
    assert by_unit["合计"][1] == 4 and by_unit["合计"][5] == 0.5
    assert any("无问题清单数据" in str(r[1]) for r in rows if len(r) > 1)
    assert any("1 条按执法行动归属" in str(r[1]) for r in rows if len(r) > 1)
    charts = summary._charts
    assert len(charts) == 1 and len(charts[0].series) == 2
    # the unit's name links to its first row of actions, and the actions sheet keeps a formula as text
    link = next(c for c in summary["A"] if c.value == U1).hyperlink
    actions = wb[SHEETS[4]]
    target = int(link.location.rsplit("A", 1)[1]) if link.location else int(link.target.rsplit("A", 1)[1])
    assert actions.cell(target, 1).value == U1 and actions.cell(target, 2).value == "A1"
    a4 = next(row for row in actions.iter_rows() if row[1].value == "A4")
    assert a4[7].value == FORMULA and a4[7].data_type == "s"  # the text itself, stored as text
    reasons = [[c.value for c in r] for r in wb[SHEETS[1]].iter_rows(min_row=2)]
    assert [U1, "执法记录设备少于规定数量", "too_few_devices", 1] not in reasons  # complete ones do not count
    assert any(r[0] == U1 and r[2] == "shortfall" and r[3] == 2 for r in reasons)
    officers = {r[0].value: r[1].value for r in wb[SHEETS[3]].iter_rows(min_row=2)}
    assert officers == {"O1": 2, "O3": 1, "（无领用记录）": 1}


def test_xlsx_in_english(report: PeriodReport) -> None:
    wb = load_workbook(io.BytesIO(render_period_xlsx(report, "en")))
    first = [c.value for c in next(wb[SHEETS[2]].iter_rows())]
    assert first[:2] == ["Device", "Actions"]


def test_pdf_has_chinese_headings_figures_and_the_chart(report: PeriodReport, tmp_path: Path) -> None:
    text = pdf_text(render_period_pdf(report, "zh"), tmp_path)
    for heading in ("执法记录仪使用情况书面报告", "各单位执法行动及全过程记录情况", "主要问题原因", "按佩戴人员统计"):
        assert heading in text, heading
    assert U1 in text and "33.3%" in text and "-66.7" in text and "66.7%" in text  # rate, change, late rate
    assert "趋势：与上一期间全过程记录率对比" in text and "本期" in text  # the chart's title and legend
    assert "无问题清单数据" in text and "1 条按佩戴民警归属" in text


def test_pdf_in_english_with_findings(runtime: Runtime, tmp_path: Path) -> None:
    build_scene(runtime)
    with reading(runtime.sessions) as s:
        report = period_report(s, runtime.settings, *MAY, None, NOW, {U1: {"opened": 7, "overdue": 3}})
    text = pdf_text(render_period_pdf(report, "en"), tmp_path)
    assert "Per unit: actions and full-process coverage" in text and "Overdue" in text
    findings = text.split("Closed in time", 1)[1]  # the findings table's heading row
    line = next(ln for ln in findings.splitlines() if ln.strip().startswith(U1))
    assert line.split() == [U1, "7", "0", "0", "3"]  # opened, closed in time, closed late, overdue
    assert "No findings data" not in text
