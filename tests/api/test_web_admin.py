"""Admin pages (SPEC §11): devices, officers, assignments and tokens, admin only, every form CSRF-protected."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from storage.models import ApiToken, Device, DeviceAssignment, Officer, TokenUnit
from storage.runtime import Runtime
from tests.api.conftest import Tokens, events
from tests.api.web_client import csrf_in, sign_in, signed_in


@pytest.fixture
def admin(client: TestClient, tokens: Tokens) -> TestClient:
    return signed_in(client, tokens.secrets["admin"])


def _csrf(client: TestClient, section: str = "devices") -> str:
    return csrf_in(client.get(f"/admin/{section}").text)


def test_only_admins_see_the_admin_pages(client: TestClient, tokens: Tokens) -> None:
    signed_in(client, tokens.secrets["reviewer"])
    assert client.get("/admin/tokens").status_code == 403
    assert ">Administration</a>" not in client.get("/").text
    signed_in(client, tokens.secrets["admin"])
    assert ">Administration</a>" in client.get("/").text
    assert client.get("/admin/nothing").status_code == 404


def test_add_a_device_an_officer_and_an_assignment(admin: TestClient, runtime: Runtime) -> None:
    csrf = _csrf(admin)
    added = admin.post(
        "/admin/devices",
        data={"csrf": csrf, "serial": "CAM-1", "model": "X9", "unit": "U1", "clock_offset_seconds": "2.5"},
    )
    assert added.status_code == 200 and "CAM-1: created." in added.text and "<td>X9</td>" in added.text
    officer = admin.post(
        "/admin/officers?lang=zh", data={"csrf": csrf, "code": "P-7", "name": "张三", "certified": "no"}
    )
    assert officer.status_code == 200 and "P-7：已新增。" in officer.text and "辅助人员" in officer.text
    assigned = admin.post(
        "/admin/assignments", data={"csrf": csrf, "device": "CAM-1", "officer": "P-7", "from": "2024-05-01"}
    )
    assert (
        assigned.status_code == 200 and "CAM-1 → P-7: created." in assigned.text and "still assigned" in assigned.text
    )
    with runtime.sessions() as s:
        device = s.scalars(select(Device).where(Device.serial == "CAM-1")).one()
        assert device.model == "X9" and device.clock_offset_seconds == 2.5
        assert s.scalars(select(Officer).where(Officer.code == "P-7")).one().certified is False
        assert s.query(DeviceAssignment).count() == 1
    assert [e.actor for e in events(runtime, "device.created")] == ["token:admin-1"]  # the admin is named
    assert [e.actor for e in events(runtime, "assignment.created")] == ["token:admin-1"]


def test_bad_input_is_shown_and_nothing_is_kept(admin: TestClient, runtime: Runtime) -> None:
    csrf = _csrf(admin)
    empty = admin.post("/admin/devices", data={"csrf": csrf, "serial": " "})
    assert empty.status_code == 422 and "serial: required" in empty.text
    offset = admin.post("/admin/devices", data={"csrf": csrf, "serial": "CAM-2", "clock_offset_seconds": "soon"})
    assert offset.status_code == 422 and "clock_offset_seconds: &#39;soon&#39; is not a number" in offset.text
    backwards = admin.post(
        "/admin/assignments",
        data={"csrf": csrf, "device": "CAM-2", "officer": "P-1", "from": "2024-05-02", "to": "2024-05-01"},
    )
    assert backwards.status_code == 422 and "to: must be after from" in backwards.text
    with runtime.sessions() as s:
        assert s.query(Device).count() == 0 and s.query(Officer).count() == 0


def test_a_chinese_page_says_each_refusal_in_chinese(admin: TestClient, runtime: Runtime) -> None:
    csrf = _csrf(admin)
    empty = admin.post("/admin/devices?lang=zh", data={"csrf": csrf, "serial": " "})
    assert empty.status_code == 422 and "设备编号：必填" in empty.text and ": required" not in empty.text
    offset = admin.post("/admin/devices?lang=zh", data={"csrf": csrf, "serial": "C-2", "clock_offset_seconds": "soon"})
    assert "时钟偏差（秒）：&#39;soon&#39; 不是有效数字" in offset.text and "is not a number" not in offset.text
    backwards = admin.post(
        "/admin/assignments?lang=zh",
        data={"csrf": csrf, "device": "C-2", "officer": "P-1", "from": "2024-05-02", "to": "2024-05-01"},
    )
    assert "截止日期须晚于起始日期" in backwards.text and "must be after" not in backwards.text
    body = "serial,model,unit,clock_offset_seconds\r\nC-1,X9,U1,late\r\nC-3,X9\r\n"
    rows = admin.post(
        "/admin/devices/import?lang=zh", data={"csrf": csrf}, files={"file": ("d.csv", body.encode(), "text/csv")}
    )
    assert "第 2 行：时钟偏差（秒）：&#39;late&#39; 不是有效数字" in rows.text, rows.text
    assert "第 3 行：应有 4 个字段，实有 2 个" in rows.text
    token = admin.post("/admin/tokens?lang=zh", data={"csrf": csrf, "name": "eve", "role": "auditor", "units": "U2"})
    assert "只有审看人员令牌按单位限定范围" in token.text and "reviewer tokens" not in token.text
    with runtime.sessions() as s:
        assert s.query(Device).count() == 0


def test_forms_without_the_sessions_token_change_nothing(admin: TestClient, runtime: Runtime) -> None:
    forged = admin.post("/admin/devices", data={"serial": "CAM-9"})
    assert forged.status_code == 403 and "not sent from this site" in forged.text
    foreign = admin.post(
        "/admin/devices", data={"csrf": _csrf(admin), "serial": "CAM-9"}, headers={"Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    with runtime.sessions() as s:
        assert s.query(Device).count() == 0


def test_csv_import_reports_bad_rows_by_line_and_keeps_good_ones(admin: TestClient, runtime: Runtime) -> None:
    csrf = _csrf(admin)
    body = "serial,model,unit,clock_offset_seconds\r\nCAM-1,X9,U1,0\r\nCAM-2,X9,U1,late\r\nCAM-3,,U2,\r\n"
    response = admin.post(
        "/admin/devices/import", data={"csrf": csrf}, files={"file": ("devices.csv", body.encode(), "text/csv")}
    )
    assert response.status_code == 422  # some rows were bad
    assert "2 created, 0 updated, 0 unchanged, 1 bad row(s)" in response.text
    assert re.search(r"<li>line 3: clock_offset_seconds[^<]*</li>", response.text), response.text
    with runtime.sessions() as s:
        assert sorted(s.scalars(select(Device.serial))) == ["CAM-1", "CAM-3"]
    zh = admin.post(
        "/admin/officers/import?lang=zh",
        data={"csrf": csrf},
        files={"file": ("o.csv", "code,name,unit,certified\r\nP-1,李四,U1,yes\r\n,,U1,\r\n".encode(), "text/csv")},
    )
    assert "新增 1 条" in zh.text and "第 3 行：" in zh.text
    header = admin.post(
        "/admin/assignments/import", data={"csrf": csrf}, files={"file": ("a.csv", b"who,what\r\nx,y\r\n", "text/csv")}
    )
    assert header.status_code == 422 and "a.csv:" in header.text
    assert admin.post("/admin/assignments/import", data={"csrf": csrf}).status_code == 422  # no file chosen
    assert admin.post("/admin/tokens/import", data={"csrf": csrf}).status_code == 404


def test_a_new_tokens_secret_is_shown_once_and_revoking_ends_its_sessions(
    admin: TestClient, client: TestClient, runtime: Runtime
) -> None:
    csrf = _csrf(admin, "tokens")
    created = admin.post("/admin/tokens", data={"csrf": csrf, "name": "carol", "role": "reviewer"})
    assert created.status_code == 201
    secret = re.search(r'<code class="secret">(bwc_[^<]+)</code>', created.text)
    assert secret is not None
    assert secret.group(1) not in admin.get("/admin/tokens").text  # never shown again
    with runtime.sessions() as s:
        token = s.scalars(select(ApiToken).where(ApiToken.name == "carol")).one()
    duplicate = admin.post("/admin/tokens", data={"csrf": csrf, "name": "carol", "role": "reviewer"})
    assert duplicate.status_code == 409 and "revoke it first" in duplicate.text
    assert admin.post("/admin/tokens", data={"csrf": csrf, "name": "x", "role": "king"}).status_code == 422

    with TestClient(client.app) as carol:  # another browser, signed in with the new token
        assert sign_in(carol, secret.group(1)).status_code == 303
        assert carol.get("/", follow_redirects=False).status_code == 200
        revoked = admin.post(f"/admin/tokens/{token.id}/revoke", data={"csrf": csrf})
        assert revoked.status_code == 200 and "Token carol is revoked" in revoked.text
        assert carol.get("/", follow_redirects=False).status_code == 303
    again = admin.post(f"/admin/tokens/{token.id}/revoke", data={"csrf": csrf})
    assert again.status_code == 404
    assert [e.actor for e in events(runtime, "token.revoked")] == ["token:admin-1"]


def test_a_reviewer_token_made_on_the_page_carries_its_units(admin: TestClient, runtime: Runtime) -> None:
    csrf = _csrf(admin, "tokens")
    created = admin.post("/admin/tokens", data={"csrf": csrf, "name": "dora", "role": "reviewer", "units": "U2, U3"})
    assert created.status_code == 201 and "<td>dora</td><td>reviewer</td><td>U2, U3</td>" in created.text
    with runtime.sessions() as s:
        token = s.scalars(select(ApiToken).where(ApiToken.name == "dora")).one()
        assert sorted(u.unit_code for u in s.scalars(select(TokenUnit).where(TokenUnit.token_id == token.id))) == [
            "U2",
            "U3",
        ]
    refused = admin.post("/admin/tokens", data={"csrf": csrf, "name": "eve", "role": "auditor", "units": "U2"})
    assert refused.status_code == 422 and "unit applies to reviewer tokens only" in refused.text
    assert "--unit" not in refused.text  # no command-line flags on a page
    with runtime.sessions() as s:
        assert s.scalars(select(ApiToken).where(ApiToken.name == "eve")).first() is None
