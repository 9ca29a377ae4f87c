"""The admin pages in Chromium, as an administrator signed in through the login form: every section in both
languages (no serious accessibility violation, a screenshot each), and each form used as a person would —
add a device, import a CSV with a broken row, create a token (its secret shown once) and revoke it, grant a
reviewer another unit's case and revoke the grant, watching the reviewer's own browser open and close."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Server, sign_in
from tests.browser.pages import check_page

SECTIONS = {
    "devices": ("Devices", "执法记录仪"),
    "officers": ("Officers", "执法人员"),
    "assignments": ("Assignments", "设备配发"),
    "tokens": ("Tokens", "访问令牌"),
    "access": ("Access grants", "访问授权"),
}
LANG_ATTR = {"en": "en", "zh": "zh-CN"}


@pytest.fixture
def second(browser: Any) -> Iterator[Any]:
    """Another person's browser (its own cookies) beside the administrator's."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def _notice(page: Any) -> str:
    text: str = page.inner_text("p.notice[role=status]")
    return text


def _alert(page: Any) -> str:
    text: str = page.inner_text("p.error[role=alert]")
    return text


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_admin_section_is_accessible_in_both_languages(
    admin: Any, server: Server, screenshots: Path, lang: str
) -> None:
    for section, words in SECTIONS.items():
        response = admin.goto(f"{server.url}/admin/{section}?lang={lang}")
        assert response is not None and response.status == 200, section
        assert admin.get_attribute("html", "lang") == LANG_ATTR[lang]
        name = words[0] if lang == "en" else words[1]
        assert name in admin.inner_text("h1")
        assert admin.inner_text("nav.tabs a[aria-current=page]") == name
        check_page(admin, screenshots, f"{lang}-admin-{section}")


def test_the_admin_tabs_lead_to_every_section(admin: Any, server: Server) -> None:
    admin.goto(f"{server.url}/?lang=en")
    with admin.expect_navigation():
        admin.click("header.top a[href^='/admin']")
    for section, (name, _zh) in SECTIONS.items():
        with admin.expect_navigation():
            admin.click(f"nav.tabs a:text-is('{name}')")
        assert admin.url.startswith(f"{server.url}/admin/{section}?")


def test_add_a_device_through_its_form(admin: Any, server: Server) -> None:
    admin.goto(f"{server.url}/admin/devices?lang=en")
    admin.get_by_label("Device").fill("CAM-BROWSER-1")
    admin.get_by_label("Model").fill("X9 Pro")
    admin.get_by_label("Unit").fill("NORTH")
    admin.get_by_label("Clock offset (s)").fill("1.5")
    with admin.expect_navigation():
        admin.get_by_role("button", name="Save").click()
    assert _notice(admin) == "CAM-BROWSER-1: created."
    row = admin.locator("table.admin-devices tr", has_text="CAM-BROWSER-1")
    assert row.locator("td").all_inner_texts() == ["CAM-BROWSER-1", "X9 Pro", "NORTH", "1.5"]


def test_import_a_csv_with_a_broken_row(admin: Any, server: Server, tmp_path: Path, screenshots: Path) -> None:
    csv_file = tmp_path / "officers.csv"
    csv_file.write_text("code,name,unit,certified\nP9001,王五,NORTH,yes\nP9002,赵六,NORTH,perhaps\n", encoding="utf-8")
    admin.goto(f"{server.url}/admin/officers?lang=en")
    admin.set_input_files("input[type=file][name=file]", str(csv_file))
    with admin.expect_navigation():
        admin.get_by_role("button", name="Import").click()
    assert "1 created, 0 updated, 0 unchanged, 1 bad row(s)" in _notice(admin)
    [bad] = admin.locator("ul.bad-rows li").all_inner_texts()
    assert bad.startswith("line 3: ") and "certified" in bad
    assert admin.locator("table.admin-officers tr", has_text="P9001").count() == 1  # the good row is kept
    assert admin.locator("table.admin-officers tr", has_text="P9002").count() == 0
    check_page(admin, screenshots, "en-admin-officers-import-bad-row")


def test_a_tokens_secret_is_shown_once_and_revoking_ends_its_sign_in(
    admin: Any, second: Any, server: Server, screenshots: Path
) -> None:
    admin.goto(f"{server.url}/admin/tokens?lang=en")
    admin.get_by_label("Name").fill("browser-temp")
    admin.get_by_label("Role").select_option("reviewer")
    admin.get_by_label("Units (reviewers; comma-separated)").fill("NORTH")
    with admin.expect_navigation():
        admin.get_by_role("button", name="Create", exact=True).click()
    secret = admin.inner_text("code.secret")
    assert secret.startswith("bwc_") and "Copy the secret now" in admin.inner_text("section.new-token")
    check_page(admin, screenshots, "en-admin-tokens-secret-once")
    admin.reload()  # the browser sends the form again: the name is taken now, and no secret is shown
    assert "revoke it first" in _alert(admin)
    assert admin.locator("code.secret").count() == 0 and secret not in admin.content()
    admin.goto(f"{server.url}/admin/tokens?lang=en")  # opened again: the secret is gone for good
    assert admin.locator("code.secret").count() == 0 and secret not in admin.content()
    row = admin.locator("table.admin-tokens tr", has_text="browser-temp")
    assert "NORTH" in row.inner_text()

    sign_in(second, server, secret)  # the secret works, once copied
    assert "browser-temp" in second.inner_text("header.top .who")
    with admin.expect_navigation():
        admin.get_by_role("button", name="Revoke browser-temp").click()
    assert _notice(admin) == "Token browser-temp is revoked; its sessions have ended."
    assert admin.get_by_role("button", name="Revoke browser-temp").count() == 0
    second.goto(f"{server.url}/cases?lang=en")
    assert second.url.startswith(f"{server.url}/login")  # the revoked token's session ended


def test_grant_a_reviewer_another_units_case_and_revoke_it(
    admin: Any, second: Any, server: Server, screenshots: Path
) -> None:
    # a reviewer of NORTH, made on the tokens page; CASE-DEMO-003 and CASE-DEMO-004 belong to SOUTH
    admin.goto(f"{server.url}/admin/tokens?lang=en")
    admin.get_by_label("Name").fill("north-reviewer")
    admin.get_by_label("Role").select_option("reviewer")
    admin.get_by_label("Units (reviewers; comma-separated)").fill("NORTH")
    with admin.expect_navigation():
        admin.get_by_role("button", name="Create", exact=True).click()
    sign_in(second, server, admin.inner_text("code.secret"))
    refused = second.goto(f"{server.url}/cases/CASE-DEMO-003?lang=en")
    assert refused is not None and refused.status == 403 and second.inner_text("h1") == "Approval required"

    # a mistake first: the form comes back with the reason in Chinese and everything typed still there
    admin.goto(f"{server.url}/admin/access?lang=zh")
    admin.get_by_label("审查员（令牌名称）").fill("north-reviewer")
    admin.get_by_label("案件编号").fill("CASE-NOPE")
    admin.get_by_label("审批人（单位负责人）").fill("南区所长")
    admin.get_by_label("理由").fill("联合审查")
    admin.get_by_label("时长（小时，最多 2160）").fill("2")
    with admin.expect_navigation():
        admin.get_by_role("button", name="授权", exact=True).click()
    assert _alert(admin) == "案件 CASE-NOPE 没有执法行动。"
    assert admin.get_by_label("理由").input_value() == "联合审查"
    assert admin.get_by_label("审批人（单位负责人）").input_value() == "南区所长"
    check_page(admin, screenshots, "zh-admin-access-refused-grant")

    admin.get_by_label("案件编号").fill("CASE-DEMO-003")
    with admin.expect_navigation():
        admin.get_by_role("button", name="授权", exact=True).click()
    assert _notice(admin).startswith("已授权：north-reviewer 可查看案件 CASE-DEMO-003")
    row = admin.locator("table.admin-access tr", has_text="CASE-DEMO-003")
    assert row.locator("td.grant-state").inner_text() == "有效"
    assert "南区所长" in row.inner_text() and "联合审查" in row.inner_text()
    check_page(admin, screenshots, "zh-admin-access-granted")

    opened = second.goto(f"{server.url}/cases/CASE-DEMO-003?lang=en")
    assert opened is not None and opened.status == 200 and "CASE-DEMO-003" in second.inner_text("h1")
    other = second.goto(f"{server.url}/cases/CASE-DEMO-004?lang=en")
    assert other is not None and other.status == 403  # only the granted case

    grant_id = row.locator("td").first.inner_text()
    with admin.expect_navigation():
        admin.get_by_role("button", name=f"撤销 授权 {grant_id}（north-reviewer，CASE-DEMO-003）").click()
    assert _notice(admin) == f"授权 {grant_id} 已撤销：north-reviewer 不能再查看案件 CASE-DEMO-003。"
    row = admin.locator("table.admin-access tr", has_text="CASE-DEMO-003")
    assert row.locator("td.grant-state").inner_text().startswith("已撤销")
    assert row.locator("button").count() == 0
    closed = second.goto(f"{server.url}/cases/CASE-DEMO-003?lang=en")
    assert closed is not None and closed.status == 403 and second.inner_text("h1") == "Approval required"

    # the case in the list links to its page
    with admin.expect_navigation():
        row.locator("a", has_text="CASE-DEMO-003").click()
    assert admin.url.startswith(f"{server.url}/cases/CASE-DEMO-003?lang=zh")
