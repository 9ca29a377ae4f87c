"""``bwc actions show ID [--format json]`` (api/cli/cmd_actions_show.py): the verdict, devices and reasons."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from audit import linking
from storage.db import transaction
from storage.runtime import Runtime
from tests.fixtures import coverage_data as cd
from tests.fixtures.cli import Invoke
from tests.fixtures.media import MediaFactory

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


def test_cli_actions_show(runtime: Runtime, cli: Invoke, media: MediaFactory, tmp_path: Path) -> None:
    rt = runtime
    clip = media.make(tmp_path / "f1.mp4", seconds=10, tone=211)
    with transaction(rt.sessions) as s:
        act = cd.action(s, "X1", T0, T0 + timedelta(seconds=8), devices=["A", "B"])
        cd.stored_recording(s, rt.store, clip, "A", T0 - timedelta(seconds=1))
        linking.on_actions_changed(s, rt.settings, [act.id], "t")
    result = cli("actions", "show", "X1", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["verdict"] == "incomplete" and data["devices"] == ["A", "B"]
    table = cli("actions", "show", "X1")
    assert table.exit_code == 0
    assert "shortfall" in table.stdout and "incomplete" in table.stdout
    missing = cli("actions", "show", "NOPE")
    assert missing.exit_code == 2
    assert "NOPE" in missing.stderr
