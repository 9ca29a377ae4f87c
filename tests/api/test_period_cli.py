"""``bwc report period``: XLSX and PDF files, Chinese by default under BWC_LANGUAGE=zh, bad usage refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import load_workbook

from audit.period_render_xlsx import SHEETS
from storage.runtime import Runtime
from tests.audit.test_period_render import pdf_text
from tests.fixtures.cli import Invoke
from tests.fixtures.period_data import U1, build_scene

MAY = ("--from", "2024-05-01", "--to", "2024-05-31")


def test_cli_writes_xlsx_and_pdf(
    runtime: Runtime, cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_scene(runtime)
    monkeypatch.setenv("BWC_LANGUAGE", "zh")
    xlsx = tmp_path / "may.xlsx"
    done = cli("report", "period", *MAY, "--unit", U1, "--out", str(xlsx))
    assert done.exit_code == 0, done.output
    assert "3 action(s) in 1 unit(s)" in done.stderr
    summary = load_workbook(xlsx)[SHEETS[0]]
    assert summary["A1"].value == "执法记录仪使用情况书面报告"
    pdf = tmp_path / "may.pdf"
    assert cli("report", "period", *MAY, "--out", str(pdf)).exit_code == 0
    assert "按执法记录仪统计" in pdf_text(pdf.read_bytes(), tmp_path)
    english = tmp_path / "en.pdf"
    assert cli("report", "period", *MAY, "--lang", "en", "--out", str(english)).exit_code == 0
    assert "Per device" in pdf_text(english.read_bytes(), tmp_path)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((*MAY, "--out", "r.docx"), "must end in .xlsx or .pdf"),
        (("--from", "2024-05-31", "--to", "2024-05-01", "--out", "r.pdf"), "is after"),
        (("--from", "May", "--to", "2024-05-01", "--out", "r.pdf"), "is not a date"),
        ((*MAY, "--unit", "NO-SUCH", "--out", "r.pdf"), "unknown unit"),
        ((*MAY, "--lang", "fr", "--out", "r.pdf"), "is not one of"),
    ],
)
def test_cli_refuses_bad_usage(
    runtime: Runtime, cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...], words: str
) -> None:
    monkeypatch.chdir(tmp_path)
    done = cli("report", "period", *args)
    assert done.exit_code == 2 and words in done.output, done.output
    assert not list(tmp_path.glob("r.*"))  # nothing half-written
