"""``bwc demo`` (api/demo.py): the city it makes tells the stories it promises, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from api.auth import authenticate
from api.demo import ANCHOR, DemoError, fill
from audit.reports import missing_report
from audit.shapes import action_json
from config.settings import Settings
from storage.basics import utcnow
from storage.db import reading
from storage.models import Action, Recording
from storage.runtime import build_runtime
from tests.fixtures.cli import run_bwc


def test_demo_city_has_a_complete_action_and_every_kind_of_gap_once(settings: Settings) -> None:
    city = fill(settings)
    now = utcnow()
    rt = build_runtime(settings)
    try:
        with reading(rt.sessions) as s:
            actions = {a.action_id: action_json(s, a, now) for a in s.scalars(select(Action))}
            who = authenticate(s, city.token)
            statuses = sorted(r.status for r in s.scalars(select(Recording)))
            report = missing_report(s, rt.settings, None, None, None, now)
    finally:
        rt.close()
    assert who is not None and who.role == "reviewer"
    assert statuses.count("unplayable") == 1 and len(statuses) == 11
    verdicts = {key: a["verdict"] for key, a in actions.items()}
    # within the upload grace a gap is still "pending"; past it (yesterday) the action is judged for good
    assert verdicts == {
        "DEMO-01": "complete",
        "DEMO-02": "pending",
        "DEMO-03": "pending",
        "DEMO-04": "incomplete",
        "DEMO-05": "complete",
    }
    codes = {key: sorted(r["code"] for r in a["reasons"]) for key, a in actions.items()}
    assert codes["DEMO-02"] == ["shortfall", "shortfall"]  # a late camera and a paused one
    assert codes["DEMO-03"] == ["no_audio", "shortfall"]  # the muted camera does not count
    assert "too_few_devices" in codes["DEMO-04"] and "unplayable" in codes["DEMO-04"]
    late = {r["device"] for r in report["late_uploads"]}
    assert late == {"CAM-N01", "CAM-N02"}  # yesterday's cameras docked only now
    assert [(m["device"], m["from_sequence"]) for m in report["missing_files"]] == [("CAM-N01", 5)]

    # run again minutes later (past a minute boundary, which used to move every clip): nothing new but a sign-in
    again = fill(settings, now=now + timedelta(minutes=7))
    assert again.token != city.token
    rt = build_runtime(settings)
    try:
        with reading(rt.sessions) as s:
            assert len(list(s.scalars(select(Recording)))) == 11 and len(list(s.scalars(select(Action)))) == 5
    finally:
        rt.close()


def test_bwc_demo_prints_only_the_token_on_stdout(tmp_path: Path) -> None:
    done = run_bwc("demo", env={"BWC_HOME": f"{tmp_path}/home"}, timeout=300)
    assert done.returncode == 0, done.stderr
    [token] = done.stdout.split()
    assert token.startswith("bwc_") and "/login" in done.stderr


def test_demo_refuses_a_scene_file_that_holds_no_time_and_says_how_to_start_over(settings: Settings) -> None:
    card = settings.home / "demo-card"
    card.mkdir(parents=True)
    (card / ANCHOR).write_text("yesterday-ish\n", encoding="utf-8")
    with pytest.raises(DemoError, match="remove it to start a new demo city"):
        fill(settings)
