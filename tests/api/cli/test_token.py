"""``bwc token create|list|revoke`` as a user runs them: a real subprocess on the test database."""

from __future__ import annotations

import json
import subprocess

from sqlalchemy import select

from api.auth import authenticate, hash_token
from storage.db import transaction
from storage.models import ApiToken
from storage.runtime import Runtime
from tests.fixtures.cli import run_bwc


def _bwc(runtime: Runtime, *args: str) -> subprocess.CompletedProcess[str]:
    settings = runtime.settings
    env = {"BWC_HOME": str(settings.home), "BWC_DATABASE_URL": settings.db_url, "BWC_STORAGE_URL": settings.store_url}
    return run_bwc(*args, env=env)


def test_create_prints_the_token_alone_and_keeps_only_its_hash(runtime: Runtime) -> None:
    done = _bwc(runtime, "token", "create", "--role", "station", "--name", "dock-3", "--station", "ST-3")
    assert done.returncode == 0, done.stderr
    secret = done.stdout.strip()
    assert done.stdout == secret + "\n" and secret.startswith("bwc_") and len(secret) > 40
    with transaction(runtime.sessions) as s:
        rows = list(s.scalars(select(ApiToken)))
        assert [(r.name, r.role, r.token_hash) for r in rows] == [("dock-3", "station", hash_token(secret))]
        principal = authenticate(s, secret)
    assert principal is not None and principal.station_code == "ST-3"


def test_bad_role_is_exit_2(runtime: Runtime) -> None:
    done = _bwc(runtime, "token", "create", "--role", "root", "--name", "x")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "unknown role" in done.stderr


def test_list_never_shows_tokens_and_revoke_stops_one(runtime: Runtime) -> None:
    secret = _bwc(runtime, "token", "create", "--role", "reviewer", "--name", "li.lei").stdout.strip()
    listed = _bwc(runtime, "token", "list", "--format", "json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["role"], r["revoked_at"]) for r in rows] == [("li.lei", "reviewer", None)]
    assert secret not in listed.stdout and hash_token(secret) not in listed.stdout

    assert _bwc(runtime, "token", "revoke", "li.lei").returncode == 0
    with transaction(runtime.sessions) as s:
        assert authenticate(s, secret) is None
    again = _bwc(runtime, "token", "revoke", "li.lei")
    assert again.returncode == 2 and "no live token" in again.stderr
    table = _bwc(runtime, "token", "list")
    assert table.returncode == 0 and "li.lei" in table.stdout and secret not in table.stdout


def test_revoke_by_a_number_past_any_id_is_not_found_not_a_traceback(runtime: Runtime) -> None:
    for number in (str(2**31), str(2**64), "²"):  # past PostgreSQL's integer, past 64 bits, a non-ASCII digit
        done = _bwc(runtime, "token", "revoke", number)
        assert done.returncode == 2, (number, done.stderr)
        assert "no live token" in done.stderr and "Traceback" not in done.stderr


def test_recordings_list_refuses_a_limit_past_64_bits(runtime: Runtime) -> None:
    done = _bwc(runtime, "recordings", "list", "--limit", str(2**63))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert _bwc(runtime, "recordings", "list", "--limit", str(2**63 - 1), "--format", "json").stdout.strip() == "[]"
