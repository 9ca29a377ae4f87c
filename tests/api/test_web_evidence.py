"""Web pages show the evidence record: export button, digest, fixity, hold, retention and who read a recording."""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from io import BytesIO
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from api.app import create_app
from audit.fixity import run_checks, select_targets
from storage.db import transaction
from storage.models import Action
from tests.api.conftest import Tokens, make_tokens
from tests.api.web_client import use_session
from tests.fixtures.audit_log import new_signer, pem
from tests.fixtures.evidence import ACTION, CASE, Case, cli_for


@pytest.fixture
def web(case: Case) -> Iterator[tuple[TestClient, Tokens]]:
    with TestClient(create_app(case.rt.settings)) as c:
        tokens = make_tokens(case.rt)
        use_session(c, case.rt, tokens.secrets["reviewer"])
        yield c, tokens


def _fixity(case: Case) -> None:
    rt = case.rt
    with transaction(rt.sessions) as s:
        targets = select_targets(s)
    run_checks(rt.sessions, rt.store, rt.settings, targets, "test")


def test_the_player_shows_digest_fixity_hold_retention_and_who_read_it(
    case: Case, web: tuple[TestClient, Tokens], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _tokens = web
    rec = case.recs["DEV-A"]
    assert cli_for(case.rt, monkeypatch)("case", "hold", CASE, "--reason", "court order").exit_code == 0
    _fixity(case)
    assert client.get(f"/recordings/{rec.id}/content").status_code == 200  # a read, by reviewer-1

    html = client.get(f"/recordings/{rec.id}/play").text

    assert rec.sha256 in html and "intact (checked" in html and ">held<" in html
    assert "Kept at least until" in html
    trail = html.split("Audit trail", 1)[1]
    assert "token:reviewer-1" in trail and "evidence viewed" in trail and "fixity checked (intact)" in trail
    assert "recording taken in" in trail and 'data-kind="evidence.read"' in trail
    zh = client.get(f"/recordings/{rec.id}/play?lang=zh").text
    assert "证据保全" in zh
    zh_trail = zh.split("审计记录", 1)[1]
    assert "查看证据" in zh_trail and "完整性校验 (完好)" in zh_trail
    assert "录像入库" in zh_trail and ">evidence.read" not in zh_trail and "fixity checked" not in zh_trail


def test_a_damaged_recording_is_not_played_unless_asked(case: Case, web: tuple[TestClient, Tokens]) -> None:
    client, _tokens = web
    rec = case.recs["DEV-B"]
    case.flip_byte(rec.sha256)
    _fixity(case)

    page = client.get(f"/recordings/{rec.id}/play").text
    anyway = client.get(f"/recordings/{rec.id}/play?accept_damaged=true").text

    assert "failed its fixity check" in page and "FAILED its check" in page and "<video" not in page
    assert "accept_damaged=true" in page
    assert f'src="/recordings/{rec.id}/content?accept_damaged=true"' in anyway
    assert client.get(f"/recordings/{rec.id}/content").status_code == 409
    assert client.get(f"/recordings/{rec.id}/content?accept_damaged=true").status_code == 200


def test_the_action_page_shows_each_recordings_record_and_trail(case: Case, web: tuple[TestClient, Tokens]) -> None:
    client, _tokens = web
    _fixity(case)
    client.get(f"/recordings/{case.recs['DEV-A'].id}/content")

    html = client.get(f"/actions/{ACTION}").text

    for device in ("DEV-A", "DEV-B"):
        assert case.recs[device].sha256 in html
    assert case.recs["DEV-C"].sha256 not in html
    assert "not held" in html and "intact (checked" in html
    trail = html.split("Audit trail of these recordings", 1)[1]
    assert "token:reviewer-1" in trail and "evidence viewed" in trail


def test_the_case_page_has_an_export_button_that_downloads_the_bag(case: Case, web: tuple[TestClient, Tokens]) -> None:
    client, tokens = web
    key = case.rt.settings.signing_key_path
    assert key is not None
    key.parent.mkdir(parents=True, exist_ok=True)
    key.write_text(pem(new_signer(case.rt.settings.audit_origin)))

    html = client.get(f"/cases/{CASE}").text
    assert f'href="/exports/{CASE}?lang=en"' in html and "Export for court" in html and "not held" in html

    download = client.get(f"/exports/{CASE}")
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(BytesIO(download.content)) as zf:
        assert f"bwc-export-{CASE}/data/case.json" in zf.namelist()
    assert download.headers["content-disposition"] == (
        f"attachment; filename=\"{CASE}-export.zip\"; filename*=UTF-8''{CASE}-export.zip"
    )
    chinese = "粤公刑(2024)001号"  # a Chinese case number survives in filename* (RFC 6266), ASCII beside it
    with transaction(case.rt.sessions) as s:
        s.execute(update(Action).where(Action.case_number == CASE).values(case_number=chinese))
    renamed = client.get(f"/exports/{quote(chinese)}")
    assert renamed.status_code == 200, renamed.text
    disposition = renamed.headers["content-disposition"]
    assert f"filename*=UTF-8''{quote(chinese + '-export.zip', safe='')}" in disposition
    assert 'filename="2024_001-export.zip"' in disposition
    use_session(client, case.rt, tokens.secrets["auditor"])
    assert "Export for court" not in client.get(f"/cases/{CASE}").text  # auditors may not take evidence out
