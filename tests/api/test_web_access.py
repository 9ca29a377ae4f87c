"""The access-grants page (SPEC §15) on SQLite and PostgreSQL: an admin grants a reviewer one case of another
unit, the reviewer reads that case and no other, revoking ends it, and each step is an audit event.

The scene: actions A-1 (unit U1, case C-U1), A-2 (U2, C-U2) and A-3 (U2, C-U3); ``reviewer-1`` carries U1.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.routes.web_access import PAGE_SIZE
from audit.access import MAX_HOURS, grant_access
from storage.basics import utcnow
from storage.db import transaction
from storage.models import AccessGrant
from storage.runtime import Runtime
from tests.api.conftest import Tokens, events
from tests.api.web_client import csrf_in, signed_in

HOLDER = "reviewer-1"


def _action(action_id: str, case: str, unit: str) -> dict[str, Any]:
    return {
        "action_id": action_id,
        "case_number": case,
        "unit": unit,
        "started_at": "2024-05-01T08:00:00Z",
        "ended_at": "2024-05-01T08:10:00Z",
        "devices": [f"DEV-{action_id}"],
    }


@pytest.fixture
def admin(client: TestClient, tokens: Tokens) -> TestClient:
    for body in (_action("A-1", "C-U1", "U1"), _action("A-2", "C-U2", "U2"), _action("A-3", "C-U3", "U2")):
        response = client.post("/api/v1/actions", json=body, headers=tokens.headers("admin"))
        assert response.status_code == 200, response.text
    return signed_in(client, tokens.secrets["admin"])


@pytest.fixture
def reviewer(client: TestClient, tokens: Tokens) -> Iterator[TestClient]:
    """Another browser, signed in as the U1 reviewer."""
    with TestClient(client.app) as other:
        yield signed_in(other, tokens.secrets["reviewer"])


def _form(admin: TestClient, lang: str = "en", **fields: str) -> dict[str, str]:
    csrf = csrf_in(admin.get(f"/admin/access?lang={lang}").text)
    typed = {"to": HOLDER, "case_number": "C-U2", "approver": "Head of U2", "reason": "joint review", "hours": "2"}
    return {"csrf": csrf, **typed, **fields}


def _grant_count(runtime: Runtime) -> int:
    with runtime.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(AccessGrant)) or 0)


def _denied(page: Any) -> None:
    assert page.status_code == 403 and "Approval required" in page.text, page.text


def test_a_grant_opens_one_case_until_it_is_revoked(admin: TestClient, reviewer: TestClient, runtime: Runtime) -> None:
    _denied(reviewer.get("/cases/C-U2"))
    empty = admin.get("/admin/access")
    assert empty.status_code == 200 and "<p>None.</p>" in empty.text
    assert 'aria-current="page">Access grants</a>' in empty.text  # a tab of the admin pages

    granted = admin.post("/admin/access", data=_form(admin))
    assert granted.status_code == 201, granted.text
    assert "Access granted: reviewer-1 may read case C-U2 until" in granted.text
    [row] = re.findall(r'<tr class="grant-(\w+)"><td>(\d+)</td>', granted.text)
    state, grant_id = row[0], int(row[1])
    assert state == "active" and '<td class="grant-state">active</td>' in granted.text
    assert '<a href="/cases/C-U2?lang=en">C-U2</a>' in granted.text and "<td>Head of U2</td>" in granted.text
    assert f'action="/admin/access/{grant_id}/revoke?lang=en"' in granted.text

    assert reviewer.get("/cases/C-U2").status_code == 200  # the granted case
    assert reviewer.get("/actions/A-2").status_code == 200
    _denied(reviewer.get("/cases/C-U3"))  # the same unit's other case is still closed
    assert reviewer.get("/cases/C-U1").status_code == 200  # and the reviewer's own unit still open

    subject = f"grant:{grant_id}"
    [made] = [e for e in events(runtime, "access.granted") if e.subject == subject]
    details = json.loads(made.details)
    assert made.actor == "token:admin-1"
    assert (details["holder"], details["case_number"], details["approver"], details["reason"]) == (
        HOLDER,
        "C-U2",
        "Head of U2",
        "joint review",
    )
    assert {json.loads(e.details)["holder"] for e in events(runtime, "access.grant_used")} == {HOLDER}

    csrf = csrf_in(granted.text)
    revoked = admin.post(f"/admin/access/{grant_id}/revoke", data={"csrf": csrf})
    assert revoked.status_code == 200
    assert f"Grant {grant_id} is revoked: reviewer-1 may no longer read case C-U2." in revoked.text
    assert '<a href="/admin/access?lang=zh" hreflang="zh-CN">' in revoked.text  # not the form's POST address
    assert (
        '<tr class="grant-revoked">' in revoked.text and 'action="/admin/access/' not in revoked.text
    )  # no button left
    _denied(reviewer.get("/cases/C-U2"))
    [ended] = [e for e in events(runtime, "access.revoked") if e.subject == subject]
    assert ended.actor == "token:admin-1" and json.loads(ended.details)["expired"] is False

    again = admin.post(f"/admin/access/{grant_id}/revoke?lang=zh", data={"csrf": csrf})
    assert again.status_code == 409 and f"授权 {grant_id} 已被撤销。" in again.text
    missing = admin.post("/admin/access/999999/revoke", data={"csrf": csrf})
    assert missing.status_code == 404 and "There is no grant 999999." in missing.text
    assert len(events(runtime, "access.revoked")) == 1


@pytest.mark.parametrize(
    ("fields", "status", "en", "zh"),
    [
        ({"to": "nobody"}, 404, "No live token is named nobody.", "没有名为 nobody 的有效令牌。"),
        ({"to": "auditor-1"}, 422, "auditor-1 holds a token that sees every unit", "auditor-1 持有的令牌本已可查看"),
        ({"case_number": "C-NONE"}, 404, "There is no action for case C-NONE.", "案件 C-NONE 没有执法行动。"),
        ({"hours": "0"}, 422, f"at most {MAX_HOURS}.", f"不超过 {MAX_HOURS} 的数字"),
        ({"hours": str(MAX_HOURS + 1)}, 422, f"at most {MAX_HOURS}.", f"不超过 {MAX_HOURS} 的数字"),
        ({"hours": "soon"}, 422, "Hours must be a number", "时长须为"),
        ({"hours": "nan"}, 422, "Hours must be a number", "时长须为"),
        ({"hours": "inf"}, 422, "Hours must be a number", "时长须为"),
        ({"reason": "   "}, 422, "Give the reason for the grant.", "请填写授权理由。"),
        ({"approver": ""}, 422, "Name who approved the grant.", "请填写审批人。"),
    ],
)
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_refused_grant_reshows_the_form_in_the_pages_language_and_keeps_nothing(
    admin: TestClient, runtime: Runtime, fields: dict[str, str], status: int, en: str, zh: str, lang: str
) -> None:
    form = _form(admin, lang, **fields) | {"reason": fields.get("reason", "a <b>typed</b> reason")}
    page = admin.post(f"/admin/access?lang={lang}", data=form)
    assert page.status_code == status, page.text
    assert page.headers["content-type"].startswith("text/html")
    alert = re.search(r'<p class="error" role="alert">([^<]*)</p>', page.text)
    assert alert is not None and (en if lang == "en" else zh) in alert.group(1), page.text
    if lang == "zh":
        words = alert.group(1).replace(form["to"], "").replace(form["case_number"], "")
        assert not re.search(r"[A-Za-z]{3,}", words), alert.group(1)  # no English, no command-line flags
    # what was typed is still in the form (escaped), so it can be corrected rather than typed again
    assert f'name="to" required maxlength="256" list="reviewer-tokens" value="{form["to"]}"' in page.text
    assert f'value="{form["hours"]}"' in page.text
    if "reason" not in fields:
        assert 'value="a &lt;b&gt;typed&lt;/b&gt; reason"' in page.text
    assert _grant_count(runtime) == 0 and events(runtime, "access.granted") == []


def test_empty_hours_take_the_apis_default_and_the_holder_is_offered(admin: TestClient, runtime: Runtime) -> None:
    form = admin.get("/admin/access")
    assert f'<option value="{HOLDER}"></option>' in form.text  # live reviewer tokens, offered while typing
    assert '<option value="auditor-1">' not in form.text
    assert admin.post("/admin/access", data=_form(admin, hours="")).status_code == 201
    with runtime.sessions() as s:
        grant = s.scalars(select(AccessGrant)).one()
        assert grant.expires_at - grant.granted_at == timedelta(hours=24)


def test_an_expired_grant_shows_as_expired_in_both_languages(admin: TestClient, runtime: Runtime) -> None:
    with transaction(runtime.sessions) as s:
        grant_access(
            s,
            holder=HOLDER,
            case_number="C-U2",
            approver="Head",
            reason="last week",
            hours=1,
            actor="test",
            now=utcnow() - timedelta(hours=2),
        )
    en = admin.get("/admin/access")
    assert '<tr class="grant-expired">' in en.text and '<td class="grant-state">expired</td>' in en.text
    assert 'action="/admin/access/' not in en.text  # nothing left to revoke
    zh = admin.get("/admin/access?lang=zh")
    assert '<td class="grant-state">已过期</td>' in zh.text and "访问授权" in zh.text


def test_forms_without_the_sessions_token_grant_and_revoke_nothing(admin: TestClient, runtime: Runtime) -> None:
    forged = admin.post("/admin/access", data=_form(admin) | {"csrf": "forged"})
    assert forged.status_code == 403 and "not sent from this site" in forged.text
    foreign = admin.post("/admin/access", data=_form(admin), headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    assert _grant_count(runtime) == 0
    granted = admin.post("/admin/access", data=_form(admin))
    grant_id = re.findall(r'<tr class="grant-active"><td>(\d+)</td>', granted.text)[0]
    assert admin.post(f"/admin/access/{grant_id}/revoke", data={}).status_code == 403
    assert events(runtime, "access.revoked") == []


def test_only_admins_open_the_access_page(client: TestClient, tokens: Tokens) -> None:
    for role in ("reviewer", "auditor"):
        signed_in(client, tokens.secrets[role])
        refused = client.get("/admin/access")
        assert refused.status_code == 403 and "Your role may not view this page." in refused.text
        client.cookies.clear()


def test_the_grants_are_listed_a_page_at_a_time_newest_first(admin: TestClient, runtime: Runtime) -> None:
    with transaction(runtime.sessions) as s:
        made = [
            grant_access(
                s, holder=HOLDER, case_number="C-U2", approver="Head", reason=f"r{i}", hours=1, actor="t", now=utcnow()
            ).id
            for i in range(PAGE_SIZE + 5)
        ]
    first = admin.get("/admin/access").text
    second = admin.get("/admin/access", params={"page": "2", "lang": "zh"}).text
    listed = [[int(i) for i in re.findall(r'<tr class="grant-\w+"><td>(\d+)</td>', p)] for p in (first, second)]
    assert listed == [sorted(made, reverse=True)[:PAGE_SIZE], sorted(made, reverse=True)[PAGE_SIZE:]]
    assert f"Access grants ({PAGE_SIZE + 5})" in first and "Page 1" in first
    assert f"访问授权 ({PAGE_SIZE + 5})" in second and "第 2 页" in second
    assert 'rel="next" href="/admin/access?page=2&amp;lang=en"' in first and 'rel="prev"' not in first
    assert 'rel="prev" href="/admin/access?page=1&amp;lang=zh"' in second and 'rel="next"' not in second
    assert admin.get("/admin/access", params={"page": "0"}).status_code == 422
