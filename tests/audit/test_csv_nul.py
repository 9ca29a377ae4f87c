"""A NUL byte in a CSV field is a bad row named by its line; the good rows still import, on both databases."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.auth import create_token
from audit.csv_rows import FileError
from audit.imports import import_actions, import_officers
from storage.db import transaction
from storage.models import Action, Officer
from storage.runtime import Runtime
from tests.fixtures.audit_data import ACTION_HEADER, csv_bytes

ROWS = [
    ACTION_HEADER,
    "A1,C1,U1,2024-05-01 08:00,2024-05-01 09:00,P1,D1;D2,,patrol",
    "A2,C\x001,U1,2024-05-01 08:00,2024-05-01 09:00,P1,D1,,patrol",  # line 3: NUL in case_number
    "A3,C1,U1,2024-05-01 10:00,2024-05-01 11:00,P1,D1;D\x002,,patrol",  # line 4: NUL inside a list
    "A4,C2,U2,2024-05-01 10:00,2024-05-01 11:00,P2,D3,,",
]


def _action_ids(runtime: Runtime) -> list[str]:
    with runtime.sessions() as s:
        return list(s.scalars(select(Action.action_id).order_by(Action.action_id)))


def test_nul_rows_are_reported_and_good_rows_import(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as s:
        report = import_actions(s, runtime.settings, csv_bytes(ROWS), "test", "actions.csv")

    assert _action_ids(runtime) == ["A1", "A4"]
    assert [(e.line, e.reason) for e in report.errors] == [
        (3, "case_number: contains a NUL character"),
        (4, "devices: contains a NUL character"),
    ]


def test_nul_in_an_officer_row_and_in_the_header(runtime: Runtime) -> None:
    data = csv_bytes(["code,name,unit,certified", "P1,Li,U1,true", "P2,W\x00ang,U1,true"])
    with transaction(runtime.sessions) as s:
        report = import_officers(s, runtime.settings, data, "test", "officers.csv")
    with runtime.sessions() as s:
        assert list(s.scalars(select(Officer.code))) == ["P1"]
    assert [e.line for e in report.errors] == [3]
    with pytest.raises(FileError, match="NUL"), transaction(runtime.sessions) as s:
        import_officers(s, runtime.settings, csv_bytes(["co\x00de,name,unit,certified", "P3,Li,U1,true"]), "test", "x")


def test_the_api_import_reports_the_nul_row(runtime: Runtime) -> None:
    with transaction(runtime.sessions) as s:
        _token, secret = create_token(s, role="admin", name="adm", actor="test")
    with TestClient(create_app(runtime.settings)) as client:
        response = client.post(
            "/api/v1/actions/import", headers={"Authorization": f"Bearer {secret}"}, content=csv_bytes(ROWS)
        )
    assert response.status_code < 500, response.text
    assert [e["line"] for e in response.json()["errors"]] == [3, 4]
    assert _action_ids(runtime) == ["A1", "A4"]
