"""The backup-and-restore recipe of deploy/README.md, run for real on PostgreSQL.

A service with real recordings and checkpoints is dumped with ``pg_dump``, restored into a fresh database with
``pg_restore``, and the restored service is checked the way the recipe says: ``bwc audit verify`` and
``bwc fixity --sample``. The restored log must still refuse edits (pg_dump keeps the guards) and the checks
must still catch damage (a restore that verified anything would prove nothing).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from storage.db import make_engine
from tests.fixtures.audit_log import new_signer, pem
from tests.fixtures.cli import run_bwc
from tests.fixtures.databases import PgDatabase, pg_available
from tests.fixtures.media import MediaFactory

pytestmark = pytest.mark.skipif(
    pg_available() is not None or shutil.which("pg_dump") is None, reason="needs PostgreSQL and pg_dump"
)


@pytest.fixture
def databases() -> Iterator[tuple[PgDatabase, PgDatabase]]:
    source, target = PgDatabase(), PgDatabase()
    try:
        yield source, target
    finally:
        source.drop()
        target.drop()


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_restored_dump_verifies_and_its_objects_check_out(
    tmp_path: Path, media: MediaFactory, databases: tuple[PgDatabase, PgDatabase]
) -> None:
    source, target = databases
    home = tmp_path / "home"
    # as in production: the key comes from a secret, not from a file `bwc init` made
    key = pem(new_signer())
    env = {"BWC_HOME": str(home), "BWC_DATABASE_URL": source.url, "BWC_STABLE_SECONDS": "0", "BWC_SIGNING_KEY": key}
    _ok(run_bwc("init", env=env))
    clips = [media.make(tmp_path / "in" / f"CAM0{n}_20261101T0{n}0000.mp4", tone=300 + n) for n in range(1, 4)]
    _ok(run_bwc("ingest", *map(str, clips), env=env))
    _ok(run_bwc("audit", "checkpoint", env=env))

    dump = tmp_path / "bwc.dump"
    subprocess.run(["pg_dump", "-Fc", "-f", str(dump), _libpq(source.url)], check=True, capture_output=True)
    target_engine = make_engine(target.url)
    with target_engine.begin() as conn:  # the target starts empty, as a fresh server would
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    target_engine.dispose()
    subprocess.run(["pg_restore", "--no-owner", "-d", _libpq(target.url), str(dump)], check=True, capture_output=True)

    restored = env | {"BWC_DATABASE_URL": target.url}
    assert "audit log ok" in _ok(run_bwc("audit", "verify", env=restored))
    assert "3 objects checked, 0 failed" in _ok(run_bwc("fixity", "--sample", "10", env=restored))

    engine = make_engine(target.url)
    try:
        with pytest.raises(DBAPIError), engine.begin() as conn:
            conn.execute(text("UPDATE audit_events SET actor = 'token:mallory' WHERE seq = 1"))
    finally:
        engine.dispose()

    stored = next(p for p in (home / "objects").rglob("*") if p.is_file() and p.stat().st_size > 1000)
    stored.chmod(0o644)
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    damaged = run_bwc("fixity", "--sample", "10", env=restored)
    assert damaged.returncode == 1, damaged.stdout + damaged.stderr
    assert "mismatch" in damaged.stderr
