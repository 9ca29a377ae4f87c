"""The commands of api/cli/main.py: ``bwc config show`` (secrets masked) and bad settings named, never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fixtures.cli import Invoke, run_bwc
from tests.fixtures.media import MediaFactory


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


def _words(module: str) -> set[str]:
    """The first words of the command lines a ``cmd_*`` module adds, read from a program of its own."""
    import importlib

    import typer

    program = typer.Typer()
    importlib.import_module(f"api.cli.{module}").register(program)
    commands = {c.name or (c.callback.__name__ if c.callback else "") for c in program.registered_commands}
    return {w.replace("_", "-") for w in commands} | {g.name or "" for g in program.registered_groups}


def test_a_first_word_that_imports_one_module_finds_every_command_it_names() -> None:
    import pkgutil

    import api.cli as pkg
    from api.cli.main import _ONLY

    modules = [m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name.startswith("cmd_")]
    adding = {word: {m for m in modules if word in _words(m)} for word in _ONLY}
    assert adding == {word: set(names) for word, names in _ONLY.items()}
    assert adding["ingest"] == {"cmd_ingest"}


def test_bwc_ingest_imports_only_the_ingest_commands(tmp_path: Path) -> None:
    """``bwc ingest`` runs once per file on a station: the audit, report and import commands stay unimported."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "sys.argv = ['bwc', 'ingest', '--help']\n"
        "import api.cli.main as m\n"
        "try:\n    m.main()\nexcept SystemExit:\n    pass\n"
        "print(' '.join(sorted(k for k in sys.modules if k.startswith('api.cli.cmd_'))), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={"BWC_HOME": str(tmp_path)}, check=True
    )
    assert done.stderr.split() == ["api.cli.cmd_ingest"]
    assert "status" in done.stdout  # its help still lists every ingest subcommand


def test_bwc_ingest_of_a_file_imports_no_push_s3_or_progress_code(tmp_path: Path, media: MediaFactory) -> None:
    """``bwc ingest FILE`` runs once per file: on the local store it stores the file without importing httpx2 (only
    a push needs it), boto3 (only S3), Rich's progress bars (only a terminal), the web service, the report
    writers, cryptography (only SM3 and signing), psycopg and SQLAlchemy's PostgreSQL dialect (only that
    database: ~0.1 s of CPU on a SQLite station) or watchdog (only ``bwc watch``): each is start-up CPU per file."""
    import os
    import subprocess
    import sys

    env = {"BWC_HOME": str(tmp_path / "home")}
    assert run_bwc("init", env=env).returncode == 0
    clip = media.make(tmp_path / "card" / "DSJ-A001_001_20240501083000_0001.mp4")
    code = (
        "import sys\n"
        "sys.argv = ['bwc', 'ingest', sys.argv[1], '--format', 'json']\n"
        "import api.cli.main as m\n"
        "try:\n    m.main()\nexcept SystemExit:\n    pass\n"
        "heavy = ('httpx2', 'boto3', 'botocore', 'rich.progress', 'ingest.station', 'ingest.push_queue',\n"
        "    'fastapi', 'starlette', 'uvicorn', 'jinja2', 'api.app', 'openpyxl', 'reportlab', 'alembic',\n"
        "    'cryptography', 'typer.rich_utils', 'psycopg', 'sqlalchemy.dialects.postgresql', 'watchdog',\n"
        "    'ingest.watcher')\n"
        "print(' '.join(sorted(k for k in sys.modules if k.startswith(heavy))), file=sys.stderr)\n"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("BWC_")}
    done = subprocess.run(
        [sys.executable, "-c", code, str(clip)], capture_output=True, text=True, env=base | env, check=True
    )
    assert [o["status"] for o in json.loads(done.stdout)] == ["stored"]
    assert done.stderr.split() == []


def test_a_station_watch_imports_no_database_code(tmp_path: Path) -> None:
    """``bwc watch DIR --server URL`` (a station) holds no database: it imports neither SQLAlchemy nor the
    pipeline or the store (~0.5 s of CPU a start, paid by every station process)."""
    import os
    import subprocess
    import sys

    (tmp_path / "dock").mkdir()
    code = (
        "import sys\n"
        "sys.argv = ['bwc', 'watch', sys.argv[1], '--server', 'http://127.0.0.1:9', '--once']\n"
        "import api.cli.main as m\n"
        "try:\n    m.main()\nexcept SystemExit as exc:\n    assert exc.code in (0, None), exc.code\n"
        "heavy = ('sqlalchemy', 'storage.db', 'storage.runtime', 'storage.types', 'ingest.pipeline', 'alembic')\n"
        "print(' '.join(sorted(k for k in sys.modules if k.startswith(heavy))), file=sys.stderr)\n"
        "assert 'ingest.station' in sys.modules\n"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("BWC_")}
    env = {"BWC_HOME": str(tmp_path / "station"), "BWC_TOKEN": "station-token"}
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "dock")],
        capture_output=True,
        text=True,
        env=base | env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.split() == []
