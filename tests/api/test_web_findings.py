"""The findings ledger's pages (SPEC §13) on both databases: reviewers see their units' findings only, an auditor
moves a finding through the forms and its history shows each step, overdue findings are said in words, a form
without the session's CSRF token changes nothing, and bad ids or refused steps are HTML in the page's language."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import event

from api.auth import create_token
from api.routes.web_findings import PAGE_SIZE
from audit.findings import change_by_hand, open_by_hand
from storage.basics import utcnow
from storage.db import transaction
from storage.models import Finding
from storage.runtime import Runtime
from tests.api.conftest import Tokens, events
from tests.api.web_client import csrf_in, signed_in, use_session
from tests.fixtures import audit_data as ad

NORTH = "U1"  # the unit of the tokens fixture's reviewer
SOUTH = "城南中队"


@pytest.fixture
def ledger(runtime: Runtime) -> dict[str, int]:
    """A finding in each unit; the north one opened 40 days ago, so past its 15-day deadline."""
    now = utcnow()
    with transaction(runtime.sessions) as s:
        ad.action(s, "A-N", NORTH, ad.utc(2024, 5, 1, 8), "complete")
        ad.action(s, "A-S", SOUTH, ad.utc(2024, 5, 1, 9), "complete")
        days = runtime.settings.finding_due_days
        north = open_by_hand(s, "action:A-N", "uniform", "未戴帽", "test", now - timedelta(days=40), days)
        south = open_by_hand(s, "action:A-S", "language", "rude", "test", now, days)
        return {"north": north.id, "south": south.id}


def _status(runtime: Runtime, finding_id: int) -> str:
    with runtime.sessions() as s:
        found = s.get(Finding, finding_id)
        assert found is not None
        return found.status


def _ids_listed(html: str) -> set[int]:
    return {int(m) for m in re.findall(r'href="/findings/(\d+)\?', html)}


def test_a_reviewer_sees_only_their_units_findings(
    client: TestClient, runtime: Runtime, tokens: Tokens, ledger: dict[str, int]
) -> None:
    use_session(client, runtime, tokens.secrets["reviewer"])
    page = client.get("/findings")
    assert page.status_code == 200 and _ids_listed(page.text) == {ledger["north"]}
    assert "Open a finding by hand" not in page.text and 'name="csrf"' in page.text  # only the sign-out form
    assert client.get(f"/findings/{ledger['north']}").status_code == 200
    other = client.get(f"/findings/{ledger['south']}")
    assert other.status_code == 403 and "Approval required" in other.text and "rude" not in other.text
    assert client.get("/findings", params={"unit": SOUTH}).status_code == 403
    download = client.get("/findings.csv")
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert {r[3] for r in rows if r and r[0].isdigit()} == {"action:A-N"}
    assert f"filename*=UTF-8''{quote('工作台账-' + NORTH)}" in download.headers["content-disposition"]
    refused = client.post("/findings/new", data={"csrf": csrf_in(page.text), "subject": "action:A-N"})
    assert refused.status_code == 403 and _status(runtime, ledger["north"]) == "open"

    with transaction(runtime.sessions) as s:  # a reviewer of both units, naming none, sees both
        _row, both = create_token(s, role="reviewer", name="both", units=[NORTH, SOUTH], actor="test")
    use_session(client, runtime, both)
    assert _ids_listed(client.get("/findings").text) == {ledger["north"], ledger["south"]}
    xlsx = client.get("/findings.xlsx", params={"lang": "zh"})
    assert quote(f"工作台账-{NORTH}+{SOUTH}") in xlsx.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(xlsx.content))["工作台账 findings"]
    assert {row[3] for row in sheet.iter_rows(min_row=2, values_only=True)} == {"action:A-N", "action:A-S"}


def test_overdue_findings_are_said_in_words_and_counted(
    client: TestClient, runtime: Runtime, tokens: Tokens, ledger: dict[str, int]
) -> None:
    with transaction(runtime.sessions) as s:  # a camera no unit claims yet: its finding has no unit
        ad.device(s, "CAM-LOOSE")
        open_by_hand(s, "device:CAM-LOOSE", "damaged", "lens cracked", "test", utcnow(), {})
    use_session(client, runtime, tokens.secrets["auditor"])
    page = client.get("/findings").text
    assert page.count("OVERDUE since") == 1 and "within deadline" in page
    assert "<td>(no unit)</td>\n    <td>1</td>" in page and "(no unit 无单位)" not in page
    tally = re.search(rf"<td>{NORTH}</td>\s*<td>(\d+)</td><td>(?:<strong[^>]*>)?(\d+)", page)
    assert tally is not None and tally.groups() == ("1", "1")  # one open, one overdue
    only = client.get("/findings", params={"overdue": "true"}).text
    assert _ids_listed(only) == {ledger["north"]}
    zh = client.get(f"/findings/{ledger['north']}", params={"lang": "zh"}).text
    assert "已超期" in zh and 'lang="zh-CN"' in zh and "人工发现" in zh
    assert 'href="/actions/A-N?lang=zh"' in zh  # the subject links to its action
    # its times (opened, deadline, closed) are in the service's zone, and the page says which, once
    assert zh.count("时区 协调世界时（UTC）") == 1, zh
    en = client.get(f"/findings/{ledger['north']}").text
    assert en.count("Times in UTC") == 1, en


def test_an_auditor_moves_a_finding_open_rectifying_closed_through_the_forms(
    client: TestClient, runtime: Runtime, tokens: Tokens, ledger: dict[str, int]
) -> None:
    signed_in(client, tokens.secrets["auditor"])
    csrf = csrf_in(client.get("/findings").text)
    opened = client.post(
        "/findings/new",
        data={"csrf": csrf, "subject": "action:A-S", "category": "uniform", "note": "no cap"},
        follow_redirects=False,
    )
    assert opened.status_code == 303 and opened.headers["location"].endswith("done=opened&lang=en")
    fid = int(opened.headers["location"].split("/findings/")[1].split("?")[0])
    steps = [
        (f"/findings/{fid}/notes", {"note": "told the crew"}, "open", "The note was added."),
        (f"/findings/{fid}/notes", {"note": "new caps ordered", "rectifying": "1"}, "rectifying", "has started"),
        (f"/findings/{fid}/close", {"note": "caps worn since Monday"}, "closed", "The finding was closed."),
    ]
    for path, data, status, said in steps:
        answer = client.post(path, data={"csrf": csrf, **data})  # followed: the page shows the new state
        assert answer.status_code == 200 and said in answer.text, answer.text
        assert _status(runtime, fid) == status
    page = client.get(f"/findings/{fid}").text
    for words in ("opened", "note added", "rectification started", "closed by hand", "caps worn since Monday"):
        assert words in page
    assert "token:auditor-1" in page  # who, in every line
    with runtime.sessions() as s:
        found = s.get(Finding, fid)
        assert found is not None
        assert [h["change"] for h in found.history] == ["opened", "note", "rectifying", "close"]
    assert [e.subject for e in events(runtime, "finding.close")] == [f"finding:{fid}"]
    assert f'action="/findings/{fid}/close' not in page  # a closed finding offers no further step

    again = client.post(f"/findings/{fid}/close", data={"csrf": csrf, "note": "twice"})
    assert again.status_code == 409 and "This finding is closed: it cannot take that step." in again.text
    again_zh = client.post(f"/findings/{fid}/waive?lang=zh", data={"csrf": csrf, "reason": "再次"})
    assert again_zh.status_code == 409 and "该问题已销号，不能进行这一步。" in again_zh.text
    with runtime.sessions() as s:
        found = s.get(Finding, fid)
        assert found is not None and len(found.history) == 4


def test_an_empty_note_or_a_bad_subject_is_refused_in_words_and_keeps_what_was_typed(
    client: TestClient, runtime: Runtime, tokens: Tokens, ledger: dict[str, int]
) -> None:
    signed_in(client, tokens.secrets["auditor"])
    csrf = csrf_in(client.get("/findings").text)
    empty = client.post(f"/findings/{ledger['north']}/close", data={"csrf": csrf, "note": "  "})
    assert empty.status_code == 422 and "Write a note first." in empty.text
    empty_zh = client.post(f"/findings/{ledger['north']}/waive?lang=zh", data={"csrf": csrf, "reason": ""})
    assert empty_zh.status_code == 422 and "请先填写理由。" in empty_zh.text
    assert _status(runtime, ledger["north"]) == "open"
    bad = client.post(
        "/findings/new", data={"csrf": csrf, "subject": "camera:9", "category": "uniform", "note": "kept text"}
    )
    assert bad.status_code == 422 and "TYPE:KEY" in bad.text and ">kept text</textarea>" in bad.text
    missing = client.post(
        "/findings/new?lang=zh", data={"csrf": csrf, "subject": "action:NOPE", "category": "c", "note": "n"}
    )
    assert missing.status_code == 404 and "没有这个对象。" in missing.text
    with runtime.sessions() as s:
        assert s.query(Finding).count() == 2


def test_forms_without_the_sessions_token_change_nothing(
    client: TestClient, runtime: Runtime, tokens: Tokens, ledger: dict[str, int]
) -> None:
    signed_in(client, tokens.secrets["auditor"])
    fid = ledger["north"]
    forged = client.post(f"/findings/{fid}/close", data={"note": "forged"})
    assert forged.status_code == 403 and "not sent from this site" in forged.text
    csrf = csrf_in(client.get(f"/findings/{fid}").text)
    foreign = client.post(
        f"/findings/{fid}/close", data={"csrf": csrf, "note": "x"}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    opened = client.post("/findings/new", data={"csrf": "wrong", "subject": "action:A-N", "category": "c", "note": "n"})
    assert opened.status_code == 403
    assert _status(runtime, fid) == "open"
    with runtime.sessions() as s:
        assert s.query(Finding).count() == 2


def test_a_bad_id_is_an_html_page_in_the_pages_language(
    client: TestClient, runtime: Runtime, tokens: Tokens, ledger: dict[str, int]
) -> None:
    use_session(client, runtime, tokens.secrets["auditor"])
    missing = client.get("/findings/999999")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "There is no finding 999999." in missing.text
    assert "没有编号为 999999 的问题。" in client.get("/findings/999999?lang=zh").text
    word = client.get("/findings/abc", params={"lang": "zh"})
    assert word.status_code == 422 and word.headers["content-type"].startswith("text/html")
    assert client.post("/findings/999999/close", data={"csrf": "x", "note": "n"}).status_code == 403  # CSRF first
    kind = client.get("/findings", params={"kind": "nonsense"})
    assert kind.status_code == 422 and kind.headers["content-type"].startswith("text/html")


def test_a_ledger_longer_than_a_page_counts_all_of_it_and_loads_one_page(
    client: TestClient, runtime: Runtime, tokens: Tokens, ledger: dict[str, int]
) -> None:
    """Past PAGE_SIZE findings the tallies and the heading still count every one (the database counts them),
    the pager moves between pages, and a page loads only the findings it lists."""
    now = utcnow()
    with transaction(runtime.sessions) as s:  # 55 more in the north: 5 closed in time, 3 waived, 47 open
        extra = [open_by_hand(s, "action:A-N", f"c{i}", "n", "test", now, {}).id for i in range(55)]
        for fid in extra[:5]:
            change_by_hand(s, fid, "close", "fixed", "test", now)
        for fid in extra[5:8]:
            change_by_hand(s, fid, "waive", "not ours", "test", now)
    use_session(client, runtime, tokens.secrets["auditor"])
    loaded: list[int] = []

    def count(target: Finding, _context: object) -> None:
        loaded.append(target.id)

    event.listen(Finding, "load", count)
    try:
        first = client.get("/findings").text
    finally:
        event.remove(Finding, "load", count)
    assert len(loaded) == PAGE_SIZE  # not every matching finding, only the page's
    second = client.get("/findings", params={"page": "2"}).text
    for page in (first, second):
        assert "Findings (57)" in page
        north = re.search(
            rf"<td>{NORTH}</td>\s*<td>(\d+)</td><td>(?:<strong[^>]*>)?(\d+)(?:</strong>)?</td>\s*"
            r"<td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>",
            page,
        )
        assert north is not None and north.groups() == ("48", "1", "5", "0", "3")
        total = re.search(r'<tr class="total"><td>Total</td>\s*<td>(\d+)</td>', page)
        assert total is not None and total.group(1) == "49"  # 48 north, 1 south
    one, two = _ids_listed(first), _ids_listed(second)
    assert len(one) == PAGE_SIZE and len(two) == 7 and not one & two
    assert one | two == {ledger["north"], ledger["south"], *extra}
    assert 'rel="next" href="/findings?page=2' in first and 'rel="prev"' not in first
    assert 'rel="prev" href="/findings?page=1' in second and 'rel="next"' not in second


def test_an_auditor_names_a_findings_owner_with_a_note_and_the_change_is_audited(
    client: TestClient, runtime: Runtime, tokens: Tokens, ledger: dict[str, int]
) -> None:
    fid = ledger["south"]
    signed_in(client, tokens.secrets["auditor"])
    form = client.get(f"/findings/{fid}").text
    assert 'name="owner"' in form and 'id="note-owner"' in form
    csrf = csrf_in(form)
    forged = client.post(f"/findings/{fid}/notes", data={"note": "n", "owner": "李队长"})
    assert forged.status_code == 403
    refused = client.post(f"/findings/{fid}/notes", data={"csrf": csrf, "note": " ", "owner": "李队长"})
    assert refused.status_code == 422 and 'value="李队长"' in refused.text  # what was typed stays
    named = client.post(f"/findings/{fid}/notes?lang=zh", data={"csrf": csrf, "note": "交给中队", "owner": " 李队长 "})
    assert named.status_code == 200 and "<dt>责任人</dt><dd>李队长</dd>" in named.text
    again = client.post(f"/findings/{fid}/notes", data={"csrf": csrf, "note": "still on it", "owner": ""})
    assert again.status_code == 200 and "<dd>李队长</dd>" in again.text  # empty leaves the owner as it is
    with runtime.sessions() as s:
        found = s.get(Finding, fid)
        assert found is not None and found.owner == "李队长"
        assert [h.get("owner") for h in found.history[1:]] == ["李队长", "李队长"]
    notes = [json.loads(e.details) for e in events(runtime, "finding.note")]
    assert [(n.get("owner"), n["note"]) for n in notes] == [("李队长", "交给中队"), (None, "still on it")]
    assert all(e.actor == "token:auditor-1" for e in events(runtime, "finding.note"))

    use_session(client, runtime, tokens.secrets["reviewer"])  # a reviewer sees the owner but no form
    north = client.get(f"/findings/{ledger['north']}").text
    assert 'name="owner"' not in north
