"""The one CLI error handler (api/cli/failure.py): one line, the right exit code, no traceback, no secret."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from api.cli.failure import LOG_NAME, write_log
from config.errors import EXIT_UNEXPECTED, EXIT_USAGE
from tests.fixtures.cli import Invoke, run_bwc
from tests.fixtures.s3 import free_port

DB_PASSWORD = "hunter2-db-pw"
S3_PASSWORD = "s3cr3t-endpoint-pw"
S3_SECRET_KEY = "TOPSECRETKEY42"
TRACEBACK_MARKS = ("Traceback", "╭", 'File "')


def assert_one_clean_line(stderr: str, *must: str) -> str:
    """stderr is exactly one ``error:`` line holding ``must``, with no traceback and no secret."""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    line = lines[0]
    assert line.startswith("error: "), line
    for mark in TRACEBACK_MARKS:
        assert mark not in line
    for secret in (DB_PASSWORD, S3_PASSWORD, S3_SECRET_KEY):
        assert secret not in line
    for text in must:
        assert text in line, line
    return line


def dead_postgres_url() -> str:
    return f"postgresql+psycopg://bwc:{DB_PASSWORD}@127.0.0.1:{free_port()}/bwc"


def dead_s3_url() -> str:
    endpoint = f"http://admin:{S3_PASSWORD}@127.0.0.1:{free_port()}"
    return f"s3://evidence?endpoint_url={endpoint}&aws_access_key_id=AKIA1&aws_secret_access_key={S3_SECRET_KEY}&max_attempts=1"


def corrupt_home(tmp_path: Path) -> Path:
    """A home whose SQLite file is not a database: an error the program does not expect (exit 3)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "bwc.db").write_bytes(b"this is not an SQLite database, " * 256)
    return home


def test_unreachable_postgres_is_one_line_exit_2(
    bare_cli: Invoke, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BWC_HOME", str(tmp_path))
    monkeypatch.setenv("BWC_DATABASE_URL", dead_postgres_url())
    result = bare_cli("recordings", "list")
    assert result.exit_code == EXIT_USAGE
    assert result.stdout == ""
    assert_one_clean_line(result.stderr, "database postgresql+psycopg://bwc:***@127.0.0.1:", "unavailable")


def test_sqlite_that_cannot_be_opened_is_one_line_exit_2(
    bare_cli: Invoke, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BWC_HOME", str(tmp_path / "no" / "such" / "home"))
    result = bare_cli("recordings", "list")
    assert result.exit_code == EXIT_USAGE
    assert_one_clean_line(result.stderr, "bwc.db", "unable to open database file")


def test_unreachable_s3_at_init_is_one_line_exit_2(
    bare_cli: Invoke, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BWC_HOME", str(tmp_path))
    monkeypatch.setenv("BWC_STORAGE_URL", dead_s3_url())
    result = bare_cli("init")
    assert result.exit_code == EXIT_USAGE
    assert "database ready" in result.stdout  # the steps before the store still ran and said so
    assert_one_clean_line(result.stderr, "s3://evidence at http://admin:***@127.0.0.1:", "EndpointConnectionError")


def test_os_error_is_one_line_exit_2(bare_cli: Invoke, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("BWC_HOME", str(blocker / "home"))  # a home under a regular file cannot be made
    result = bare_cli("init")
    assert result.exit_code == EXIT_USAGE
    assert_one_clean_line(result.stderr, "a-file")


def test_unexpected_error_names_a_log_holding_the_traceback(
    bare_cli: Invoke, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = corrupt_home(tmp_path)
    monkeypatch.setenv("BWC_HOME", str(home))
    result = bare_cli("ingest", "status")
    assert result.exit_code == EXIT_UNEXPECTED
    log = home / "log" / LOG_NAME
    line = assert_one_clean_line(result.stderr, "unexpected DatabaseError", f"details in {log}")
    assert line == f"error: unexpected DatabaseError; details in {log}"
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "file is not a database" in text
    assert "bwc ingest" in text


def test_bad_usage_and_fail_keep_their_own_messages(
    bare_cli: Invoke, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BWC_HOME", str(tmp_path))
    assert bare_cli("recordings", "list", "--format", "yaml").exit_code == EXIT_USAGE  # Typer's usage error
    missing = bare_cli("ingest", str(tmp_path / "nope.mp4"))  # the command's own ``fail()``
    assert missing.exit_code == EXIT_USAGE
    assert_one_clean_line(missing.stderr, "nope.mp4")
    assert not (tmp_path / "log").exists()  # known errors write no crash log


def test_log_masks_secrets_and_falls_back_to_the_temp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocked = tmp_path / "home"
    blocked.mkdir()
    (blocked / "log").write_text("a file where the log folder should be")
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", None)  # let the stdlib re-read TMPDIR
    try:
        raise RuntimeError(f"cannot reach postgresql://bwc:{DB_PASSWORD}@db/bwc with key {S3_SECRET_KEY}")
    except RuntimeError as exc:
        path = write_log(exc, "init", {S3_SECRET_KEY}, blocked)
    assert path == tmp_path / "tmp" / LOG_NAME
    text = path.read_text()
    assert "RuntimeError" in text and "postgresql://bwc:***@db/bwc" in text
    assert DB_PASSWORD not in text and S3_SECRET_KEY not in text
    assert path.stat().st_mode & 0o077 == 0  # only the owner reads tracebacks


# -- the real program, as an operator runs it -------------------------------------------------------------


def test_real_process_unreachable_database(tmp_path: Path) -> None:
    done = run_bwc("recordings", "list", env={"BWC_HOME": str(tmp_path), "BWC_DATABASE_URL": dead_postgres_url()})
    assert done.returncode == EXIT_USAGE
    assert done.stdout == ""
    assert_one_clean_line(done.stderr, "database postgresql+psycopg://bwc:***@127.0.0.1:")


def test_real_process_on_a_database_never_set_up_says_to_run_init(tmp_path: Path) -> None:
    # an empty SQLite file, as a mistyped BWC_HOME or a forgotten `bwc init` leaves it: refused before any work
    done = run_bwc("recordings", "list", env={"BWC_HOME": str(tmp_path)})
    assert done.returncode == EXIT_USAGE
    assert done.stdout == ""
    assert_one_clean_line(done.stderr, "has no BWC schema yet: run `bwc init`")


def test_real_process_unreachable_store(tmp_path: Path) -> None:
    done = run_bwc("init", env={"BWC_HOME": str(tmp_path), "BWC_STORAGE_URL": dead_s3_url()})
    assert done.returncode == EXIT_USAGE
    assert_one_clean_line(done.stderr, "HeadBucket on s3://evidence")


def test_real_process_unexpected_error_logs_to_temp_when_home_is_read_only(tmp_path: Path) -> None:
    home = corrupt_home(tmp_path)
    (home / "log").write_text("a file where the log folder should be")  # the home log cannot be written
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    done = run_bwc("ingest", "status", env={"BWC_HOME": str(home), "TMPDIR": str(tmp)})
    assert done.returncode == EXIT_UNEXPECTED
    log = tmp / LOG_NAME
    assert_one_clean_line(done.stderr, f"details in {log}")
    assert "file is not a database" in log.read_text()
