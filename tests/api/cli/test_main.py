"""The commands of api/cli/main.py: ``bwc config show`` (secrets masked) and bad settings named, never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.cli import Invoke, run_bwc


def test_config_show_masks_secrets(bare_cli: Invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BWC_HOME", str(tmp_path))
    monkeypatch.setenv("BWC_DATABASE_URL", "postgresql+psycopg://bwc:s3cr3t-pw@db/bwc")
    monkeypatch.setenv("BWC_STORAGE_URL", "s3://ev?aws_secret_access_key=TOPSECRETKEY")
    result = bare_cli("config", "show")
    assert result.exit_code == 0, result.output
    assert "s3cr3t-pw" not in result.output and "TOPSECRETKEY" not in result.output
    shown = json.loads(result.output)
    assert shown["database_url"] == "postgresql+psycopg://bwc:***@db/bwc"
    assert shown["home"] == str(tmp_path)


def test_bad_setting_is_named_without_its_value(tmp_path: Path) -> None:
    done = run_bwc("config", "show", env={"BWC_HOME": str(tmp_path), "BWC_PORT": "hunter2-not-a-port"})
    assert done.returncode == 2
    assert "BWC_PORT" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout
