"""Findings by hand and the work ledger (SPEC §13) on both databases: open → rectifying → closed with its
history, refusals that change nothing, overdue findings in the ledger's CSV and XLSX, the period summary."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from audit.findings import change_by_hand, open_by_hand
from audit.findings_formats import render_csv, render_xlsx
from audit.findings_ledger import Filters, finding_json, findings_summary, ledger, list_findings
from audit.findings_rules import FindingConflict
from config.errors import BadInput, NotFound
from storage.basics import utcnow
from storage.db import transaction
from storage.models import AuditEvent, Finding
from storage.runtime import Runtime
from tests.fixtures import audit_data as ad

T0 = ad.utc(2024, 5, 1, 8, 0)
DAYS = {"manual": 10.0}
FORMULA = '=HYPERLINK("http://evil.example/","click")'


def _manual(rt: Runtime, action_id: str = "A9", unit: str = "交警一大队", note: str = "未按规定着装") -> int:
    with transaction(rt.sessions) as s:
        ad.action(s, action_id, unit, T0, "complete", devices=())
        return open_by_hand(s, f"action:{action_id}", "uniform", note, "token:aud", T0, DAYS).id


def test_a_manual_finding_goes_open_rectifying_closed_with_its_history(runtime: Runtime) -> None:
    rt = runtime
    fid = _manual(rt)
    with transaction(rt.sessions) as s:
        change_by_hand(s, fid, "rectifying", "已通知大队整改", "token:aud", T0 + timedelta(days=1), owner="王警官")
        change_by_hand(s, fid, "close", "已重新培训并复查", "token:aud", T0 + timedelta(days=3))
    with rt.sessions() as s:
        shape = finding_json(s.get_one(Finding, fid), T0 + timedelta(days=30))
        seqs = list(s.scalars(select(AuditEvent.kind).where(AuditEvent.subject == f"finding:{fid}")))
    assert shape["status"] == "closed" and shape["owner"] == "王警官" and shape["unit"] == "交警一大队"
    assert [(h["change"], h["status"]) for h in shape["history"]] == [
        ("opened", "open"),
        ("rectifying", "rectifying"),
        ("close", "closed"),
    ]
    assert shape["history"][2]["note"] == "已重新培训并复查" and shape["history"][0]["category"] == "uniform"
    assert shape["closed_in_time"] is True and shape["overdue"] is False
    assert seqs == ["finding.opened", "finding.rectifying", "finding.close"]


@pytest.mark.parametrize(
    ("change", "words", "error"),
    [("close", "again", FindingConflict), ("waive", "no", FindingConflict), ("note", "  ", BadInput)],
)
def test_refused_changes_change_nothing(runtime: Runtime, change: str, words: str, error: type[Exception]) -> None:
    rt = runtime
    fid = _manual(rt)
    with transaction(rt.sessions) as s:
        change_by_hand(s, fid, "close", "done", "a", T0)
    with rt.sessions() as s:
        before = (s.get_one(Finding, fid).history, s.scalar(select(func.count()).select_from(AuditEvent)))
    with pytest.raises(error), transaction(rt.sessions) as s:
        change_by_hand(s, fid, change, words, "a", T0)
    with rt.sessions() as s:
        assert (s.get_one(Finding, fid).history, s.scalar(select(func.count()).select_from(AuditEvent))) == before


def test_bad_subjects_are_refused(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as s:
        with pytest.raises(BadInput):
            open_by_hand(s, "camera:1", "uniform", "x", "a", T0, DAYS)
        with pytest.raises(NotFound):
            open_by_hand(s, "action:NOPE", "uniform", "x", "a", T0, DAYS)
        with pytest.raises(NotFound):
            change_by_hand(s, 424242, "close", "x", "a", T0)


def test_overdue_findings_show_in_the_ledger_csv_and_xlsx(runtime: Runtime) -> None:
    rt = runtime
    late = _manual(rt, "A1", "交警一大队", FORMULA)  # due T0 + 10 days, never closed
    in_time = _manual(rt, "A2", "交警一大队")
    closed_late = _manual(rt, "A3", "巡警二大队")
    with transaction(rt.sessions) as s:
        change_by_hand(s, in_time, "close", "ok", "a", T0 + timedelta(days=2))
        change_by_hand(s, closed_late, "close", "late", "a", T0 + timedelta(days=20))
    now = T0 + timedelta(days=30)
    with rt.sessions() as s:
        book = ledger(s, Filters(), now, "Asia/Shanghai")
        assert [f.id for f in list_findings(s, Filters(overdue=True), now)] == [late]
        assert list_findings(s, Filters(unit="巡警二大队"), now)[0].id == closed_late
    units = {row["unit"]: row for row in book["units"]}
    assert units["交警一大队"] == {
        "unit": "交警一大队",
        "open": 1,
        "overdue": 1,
        "closed_in_time": 1,
        "closed_late": 0,
        "waived": 0,
    }
    assert (units["巡警二大队"]["closed_late"], units[None]["overdue"]) == (1, 1)

    text = render_csv(book).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:2] == ["编号 id", "问题类型 kind"] and "超期 overdue" in text
    overdue_row = next(r for r in rows if r and r[0] == str(late))
    assert "是 yes" in overdue_row
    assert "'" + FORMULA in overdue_row  # the imported formula stays text

    wb = load_workbook(io.BytesIO(render_xlsx(book)))
    assert wb.sheetnames == ["工作台账 findings", "按单位 per unit"]
    ws = wb["工作台账 findings"]
    cells = [c for row in ws.iter_rows() for c in row if c.value == FORMULA]
    assert cells and all(c.data_type == "s" for c in cells)
    per_unit = [[c.value for c in row] for row in wb["按单位 per unit"].iter_rows()]
    assert per_unit[0] == [
        "单位 unit",
        "未销号 open",
        "超期 overdue",
        "按期销号 closed in time",
        "超期销号 closed late",
        "免于整改 waived",
    ]
    assert ["交警一大队", 1, 1, 1, 0, 0] in per_unit


def test_the_period_summary_counts_per_unit(runtime: Runtime) -> None:
    rt = runtime
    open_late = _manual(rt, "A1", "交警一大队")
    in_time = _manual(rt, "A2", "交警一大队")
    with transaction(rt.sessions) as s:
        change_by_hand(s, in_time, "close", "ok", "a", T0 + timedelta(days=2))
    with rt.sessions() as s:
        summary = findings_summary(s, T0 - timedelta(days=1), T0 + timedelta(days=60), now=utcnow())
        before = findings_summary(s, T0 - timedelta(days=10), T0 - timedelta(days=1))
        early = findings_summary(s, T0 - timedelta(days=1), T0 + timedelta(days=5))
    assert summary == {"交警一大队": {"opened": 2, "closed_in_time": 1, "closed_late": 0, "overdue": 1}}
    assert before == {} and early["交警一大队"]["overdue"] == 0
    assert open_late != in_time
