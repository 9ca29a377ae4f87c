"""``bwc actions import FILE.csv`` (api/cli/cmd_actions_import.py) end to end: good rows kept, bad lines named."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from storage.db import transaction
from storage.models import Action
from storage.runtime import Runtime
from tests.fixtures.audit_data import ACTION_HEADER, csv_bytes, events
from tests.fixtures.cli import Invoke


@pytest.fixture
def cli(cli: Invoke, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """The shared ``cli``, reading naive CSV times in Shanghai."""
    monkeypatch.setenv("BWC_TIMEZONE", "Asia/Shanghai")
    return cli


def test_actions_import_keeps_good_rows_and_exits_2_naming_bad_lines(
    cli: Invoke, runtime: Runtime, tmp_path: Path
) -> None:
    path = tmp_path / "行动.csv"
    path.write_bytes(
        csv_bytes(
            [
                ACTION_HEADER,
                "A1,C1,城管一中队,2024-05-01 08:00,2024-05-01 09:00,P1,D1;D2,人民路,巡查",
                "A2,C1,城管一中队,2024-05-01 09:00,2024-05-01 08:00,P1,D1,,",
            ],
            "gb18030",
        )
    )
    result = cli("actions", "import", str(path))
    assert result.exit_code == 2
    assert "line 3: ended_at" in result.stderr
    assert "1 created" in result.stdout
    with transaction(runtime.sessions) as s:
        a1 = s.scalar(select(Action).where(Action.action_id == "A1"))
        assert a1 is not None and a1.started_at == datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
        assert a1.verdict is not None  # re-judged in the same command
        assert events(s, "import.actions")[0][0] == "file:行动.csv"

    path.write_bytes(
        csv_bytes([ACTION_HEADER, "A1,C1,城管一中队,2024-05-01 08:00,2024-05-01 09:00,P1,D1;D2,人民路,巡查"])
    )
    again = cli("actions", "import", str(path), "--format", "json")
    assert again.exit_code == 0
    assert json.loads(again.stdout) == {
        "file": "行动.csv",
        "created": 0,
        "updated": 0,
        "unchanged": 1,
        "errors": [],
    }
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("id,when\n1,2\n")
    result = cli("actions", "import", str(bad_header))
    assert result.exit_code == 2 and "bad header" in result.stderr
    assert cli("actions", "import", str(tmp_path / "absent.csv")).exit_code == 2
