"""The missing-recording report page: filters, per-unit totals, findings, CSV and XLSX downloads (SPEC §6, §11)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from storage.db import transaction
from storage.runtime import Runtime
from tests.api.conftest import Tokens
from tests.api.web_client import signed_in
from tests.fixtures.audit_data import action, recording, utc

HOSTILE = "<script>alert(1)</script>"
MAY = {"from": "2024-05-01", "to": "2024-05-31"}


def login(client: TestClient, secret: str) -> None:
    signed_in(client, secret)


@pytest.fixture
def findings(runtime: Runtime) -> dict[str, int]:
    """May 2024: U1 has one incomplete and one complete action, U2 one pending; June has one more."""
    shortfall = {
        "code": "shortfall",
        "from": "2024-05-10T08:00:00+00:00",
        "to": "2024-05-10T08:20:00+00:00",
        "devices_recording": ["DEV-1"],
    }
    with transaction(runtime.sessions) as s:
        action(
            s,
            "R-1",
            "U1",
            utc(2024, 5, 10, 8),
            "incomplete",
            devices=("DEV-1", "DEV-2"),
            reasons=[shortfall],
            location=HOSTILE,
        )
        action(s, "R-2", "U1", utc(2024, 5, 11, 8), "complete", devices=("DEV-1", "DEV-2"))
        action(
            s,
            "R-3",
            "U2",
            utc(2024, 5, 12, 8),
            "pending",
            reasons=[{"code": "no_footage"}],
            pending_until=datetime(2999, 1, 1, tzinfo=UTC),
        )
        action(s, "R-4", "U2", utc(2024, 6, 15, 8), "incomplete")
        first = recording(s, "DEV-1", utc(2024, 5, 10, 8), sequence=1)
        late = recording(s, "DEV-1", utc(2024, 5, 10, 9), sequence=4, received_at=utc(2024, 5, 13, 9, 10))
        return {"first": first.id, "late": late.id}


def test_report_page_lists_totals_findings_and_downloads(
    client: TestClient, tokens: Tokens, findings: dict[str, int]
) -> None:
    login(client, tokens.secrets["auditor"])
    page = client.get("/reports/missing", params=MAY)
    assert page.status_code == 200, page.text
    html = page.text
    # per-unit totals, with the total row
    assert "<td>U1</td><td>2</td><td>1</td>\n    <td>0</td><td>1</td><td>50.0%</td>" in html
    assert "<td>U2</td><td>1</td><td>0</td>\n    <td>1</td><td>0</td><td>0.0%</td>" in html
    assert "<td>Total</td><td>3</td>" in html
    # the actions lacking footage, with their reasons in words; complete and out-of-period ones are absent
    assert "/actions/R-1?lang=en" in html and "/actions/R-3?lang=en" in html
    assert "/actions/R-2?" not in html and "/actions/R-4?" not in html
    assert "From 2024-05-10 08:00:00 to 2024-05-10 08:20:00 fewer devices than required" in html
    assert "No usable recording at all." in html and "badge-pending" in html
    assert HOSTILE not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # late uploads, the hole in DEV-1's numbers (2–3), unclaimed recordings
    assert "Late uploads (1)" in html and "<td>48.0</td>" in html
    assert "<td>DEV-1</td><td>2</td><td>3</td><td>2</td>" in html
    assert "Recordings no action claims (2)" in html
    assert 'href="/reports/missing.csv?from=2024-05-01&amp;to=2024-05-31&amp;unit=&amp;lang=en"' in html
    assert 'href="/reports/missing.xlsx?from=2024-05-01&amp;to=2024-05-31&amp;unit=&amp;lang=en"' in html
    assert "/play" not in html  # auditors may not play evidence


def test_report_page_in_chinese_with_unit_filter(client: TestClient, tokens: Tokens, findings: dict[str, int]) -> None:
    login(client, tokens.secrets["admin"])
    html = client.get("/reports/missing", params={**MAY, "unit": "U2", "lang": "zh"}).text
    for label in (
        "缺失录像报告",
        "起始日期",
        "截止日期",
        "全部单位",
        "按单位统计",
        "未完整记录全过程的执法行动",
        "超时上传",
        "缺失文件",
        "未关联执法行动的录像",
        "下载 CSV",
        "下载 Excel",
        "合计",
        "待上传",
        "没有任何可用录像。",
    ):
        assert label in html, label
    assert '<option value="U2" selected>U2</option>' in html
    assert "/actions/R-3?lang=zh" in html and "/actions/R-1?" not in html
    assert "unit=U2" in html
    whole = client.get("/reports/missing", params={**MAY, "lang": "zh"}).text
    assert f"/recordings/{findings['late']}/play?lang=zh" in whole  # admin and reviewers may play


def test_csv_and_xlsx_downloads(client: TestClient, tokens: Tokens, findings: dict[str, int]) -> None:
    login(client, tokens.secrets["auditor"])
    got = client.get("/reports/missing.csv", params={**MAY, "unit": ""})
    assert got.status_code == 200 and got.headers["content-type"].startswith("text/csv")
    name = "missing-2024-05-01-2024-05-31.csv"
    assert got.headers["content-disposition"] == f"attachment; filename=\"{name}\"; filename*=UTF-8''{name}"
    rows = list(csv.DictReader(io.StringIO(got.content.decode("utf-8-sig"))))
    assert sorted(r["action_id 行动编号"] for r in rows) == ["R-1", "R-3"]
    assert {r["reason 原因代码"] for r in rows} == {"shortfall", "no_footage"}

    xlsx = client.get("/reports/missing.xlsx", params={**MAY, "unit": "U1"})
    assert xlsx.status_code == 200
    name = "missing-2024-05-01-2024-05-31-U1.xlsx"
    assert xlsx.headers["content-disposition"] == f"attachment; filename=\"{name}\"; filename*=UTF-8''{name}"
    wb = load_workbook(io.BytesIO(xlsx.content))
    actions = [row[0] for row in wb["actions 行动"].iter_rows(min_row=2, values_only=True)]
    assert actions == ["R-1"]
    units = [row[:3] for row in wb["units 单位"].iter_rows(min_row=2, values_only=True)]
    assert units == [("U1", 2, 1), ("(total 合计)", 2, 1)]
    about = dict(row for row in wb["about 说明"].iter_rows(values_only=True))
    assert about["from 起始日期"] == "2024-05-01" and about["unit 单位"] == "U1"


def test_bad_filters_are_shown_not_500(client: TestClient, tokens: Tokens, findings: dict[str, int]) -> None:
    login(client, tokens.secrets["admin"])
    unknown = client.get("/reports/missing", params={**MAY, "unit": "NOPE"})
    assert unknown.status_code == 400 and "unknown unit" in unknown.text and "<form" in unknown.text
    backwards = client.get("/reports/missing", params={"from": "2024-06-01", "to": "2024-05-01"})
    assert backwards.status_code == 400 and "The start date is after the end date." in backwards.text
    bad_date = client.get("/reports/missing", params={"from": "2024-13-01", "to": ""})
    assert bad_date.status_code == 400 and "A date is not valid" in bad_date.text
    # in Chinese: Chinese words, never the command line's flags
    zh = client.get("/reports/missing", params={"from": "2024-06-01", "to": "2024-05-01", "lang": "zh"})
    assert zh.status_code == 400 and "起始日期晚于截止日期。" in zh.text and "--" not in zh.text
    zh_unit = client.get("/reports/missing", params={**MAY, "unit": "NOPE", "lang": "zh"})
    assert zh_unit.status_code == 400 and "输入的值无效" in zh_unit.text and "unknown unit" not in zh_unit.text


def test_first_visit_shows_the_last_thirty_days_and_empty_dates_mean_open(
    client: TestClient, tokens: Tokens, findings: dict[str, int]
) -> None:
    login(client, tokens.secrets["admin"])
    today = datetime.now(UTC).date()  # the test settings use UTC
    first = client.get("/reports/missing").text
    assert f'name="from" value="{today - timedelta(days=29)}"' in first and f'name="to" value="{today}"' in first
    assert "/actions/R-1?" not in first  # 2024 is long gone
    everything = client.get("/reports/missing", params={"from": "", "to": ""}).text
    assert "/actions/R-1?" in everything and "/actions/R-4?" in everything
    assert "Period: open – open" in everything


def test_a_download_keeps_a_chinese_unit_name(client: TestClient, tokens: Tokens, runtime: Runtime) -> None:
    with transaction(runtime.sessions) as s:
        action(s, "R-9", "一大队", utc(2024, 5, 10, 8), "incomplete")
    login(client, tokens.secrets["auditor"])
    got = client.get("/reports/missing.xlsx", params={**MAY, "unit": "一大队"})
    assert got.status_code == 200, got.text
    disposition = got.headers["content-disposition"]
    # RFC 6266: the unit's name survives in filename*, with an ASCII name beside it for old clients
    assert f"filename*=UTF-8''{quote('missing-2024-05-01-2024-05-31-一大队.xlsx', safe='')}" in disposition
    assert 'filename="missing-2024-05-01-2024-05-31-.xlsx"' in disposition
