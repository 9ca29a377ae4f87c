"""The period report over HTTP: the API in three formats, the page with presets and drill-down, downloads."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from urllib.parse import quote

from fastapi.testclient import TestClient
from openpyxl import load_workbook

from api.app import create_app
from api.routes.web_period import presets
from audit.period_render_xlsx import SHEETS
from storage.runtime import Runtime
from tests.api.conftest import Tokens
from tests.api.web_client import signed_in
from tests.audit.test_period_render import pdf_text
from tests.fixtures.period_data import U1, build_scene

MAY = {"from": "2024-05-01", "to": "2024-05-31"}


def test_api_json_xlsx_and_pdf(client: TestClient, tokens: Tokens, runtime: Runtime, tmp_path: Path) -> None:
    build_scene(runtime)
    auditor = tokens.headers("auditor")
    data = client.get("/api/v1/reports/period", params=MAY, headers=auditor).json()
    assert data["total"]["current"]["actions"] == 4 and data["late_attribution"]["unattributed"] == 1
    assert [u["unit"] for u in data["units"]] == ["U2", U1, None]
    one = client.get("/api/v1/reports/period", params=MAY | {"unit": U1}, headers=auditor).json()
    assert [u["unit"] for u in one["units"]] == [U1] and one["total"]["uploads"]["late"] == 2
    xlsx = client.get("/api/v1/reports/period", params=MAY | {"unit": U1, "format": "xlsx"}, headers=auditor)
    assert xlsx.status_code == 200
    # RFC 6266: the Chinese unit name survives in filename*, an ASCII name stands beside it
    disposition = xlsx.headers["content-disposition"]
    assert 'filename="period-2024-05-01-2024-05-31-unit.xlsx"' in disposition
    assert f"filename*=UTF-8''period-2024-05-01-2024-05-31-{quote(U1)}.xlsx" in disposition
    assert load_workbook(io.BytesIO(xlsx.content)).sheetnames == list(SHEETS)
    pdf = client.get("/api/v1/reports/period", params=MAY | {"format": "pdf", "lang": "zh"}, headers=auditor)
    assert pdf.headers["content-type"] == "application/pdf"
    assert "各单位执法行动及全过程记录情况" in pdf_text(pdf.content, tmp_path)


def test_api_bad_input_is_a_clear_error(client: TestClient, tokens: Tokens, runtime: Runtime) -> None:
    auditor = tokens.headers("auditor")
    for params, words in (
        ({}, "needs both"),
        ({"from": "2024-05-31", "to": "2024-05-01"}, "after"),
        ({"from": "2024-13-01", "to": "2024-05-01"}, "not a date"),
        (MAY | {"unit": "NO-SUCH"}, "unknown unit"),
    ):
        response = client.get("/api/v1/reports/period", params=params, headers=auditor)
        assert response.status_code == 422, params
        assert words in response.json()["error"]["message"], params
    assert client.get("/api/v1/reports/period", params=MAY | {"format": "docx"}, headers=auditor).status_code == 422


def _login(client: TestClient, secret: str) -> None:
    signed_in(client, secret)


def test_page_totals_presets_drill_down_and_downloads(client: TestClient, tokens: Tokens, runtime: Runtime) -> None:
    build_scene(runtime)
    _login(client, tokens.secrets["auditor"])
    html = client.get("/reports/period", params=MAY | {"lang": "zh"}).text
    assert "执法记录仪使用情况书面报告" in html and "33.3%" in html and "-66.7" in html
    assert (
        "问题整改" in html and "无问题清单数据" not in html and "1 条按执法行动归属" in html
    )  # findings from the ledger
    drill = f"/reports/period?from=2024-05-01&amp;to=2024-05-31&amp;unit={quote(U1)}&amp;lang=zh#actions"
    assert drill in html
    assert "/actions/A1?" not in html  # without a unit no action is listed
    assert "/reports/period.xlsx?from=2024-05-01" in html and "/reports/period.pdf?from=2024-05-01" in html
    for key in ("week", "month", "half_year"):
        assert f'data-preset="{key}"' in html
    unit_page = client.get("/reports/period", params=MAY | {"unit": U1}).text
    assert "/actions/A1?lang=en" in unit_page and "/actions/A3?lang=en" in unit_page
    assert "/actions/A4?" not in unit_page  # U2's
    pdf = client.get("/reports/period.pdf", params=MAY | {"unit": U1})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    xlsx = client.get("/reports/period.xlsx", params=MAY)
    assert load_workbook(io.BytesIO(xlsx.content))[SHEETS[4]].max_row == 5  # heading and four actions


def test_page_bad_dates_say_so(client: TestClient, tokens: Tokens, runtime: Runtime) -> None:
    _login(client, tokens.secrets["auditor"])
    page = client.get("/reports/period", params={"from": "2024-06-01", "to": "2024-05-01"})
    assert page.status_code == 400 and "is after" in page.text
    # a Chinese page says why in Chinese, never the English message (which names the parameter)
    zh = client.get("/reports/period", params={"from": "2024-06-01", "to": "2024-05-01", "lang": "zh"})
    assert zh.status_code == 400 and "起始日期晚于截止日期" in zh.text and "is after" not in zh.text
    bad = client.get("/reports/period", params={"from": "2024-13-01", "to": "2024-05-01", "lang": "zh"})
    assert bad.status_code == 400 and "日期无效" in bad.text and "not a date" not in bad.text
    half = client.get("/reports/period", params={"to": "2024-05-01", "lang": "zh"})
    assert half.status_code == 400 and "输入的值无效" in half.text and "needs both" not in half.text
    assert "not a date" in client.get("/reports/period", params={"from": "2024-13-01", "to": "2024-05-01"}).text


def test_default_language_comes_from_the_setting(runtime: Runtime, tokens: Tokens) -> None:
    with TestClient(create_app(runtime.settings.model_copy(update={"language": "zh"}))) as zh:
        _login(zh, tokens.secrets["auditor"])
        assert "执法记录仪使用情况书面报告" in zh.get("/reports/period", params=MAY).text
        assert "Periodic report" in zh.get("/reports/period", params=MAY | {"lang": "en"}).text


def test_presets_are_whole_spans_around_today() -> None:
    spans = presets(date(2026, 12, 1))  # a Tuesday
    assert spans["week"] == (date(2026, 11, 30), date(2026, 12, 6))
    assert spans["month"] == (date(2026, 12, 1), date(2026, 12, 31))
    assert spans["half_year"] == (date(2026, 7, 1), date(2026, 12, 31))
    assert presets(date(2024, 2, 29))["half_year"] == (date(2024, 1, 1), date(2024, 6, 30))
    assert presets(date(2024, 2, 29))["month"] == (date(2024, 2, 1), date(2024, 2, 29))
