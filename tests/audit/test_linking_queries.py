"""Linking a list of actions reads a fixed number of times per batch, however many actions and devices it has."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

from audit import linking
from storage.db import transaction
from storage.models import Action, ActionRecording
from storage.runtime import Runtime
from tests.fixtures import coverage_data as cd
from tests.fixtures.media import MediaFactory

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
DEVICES = ["D1", "D2", "D3", "D4"]


@contextmanager
def counting_selects(rt: Runtime) -> Iterator[list[str]]:
    """Every SELECT the engine runs while the block runs."""
    seen: list[str] = []
    engine = rt.sessions.kw["bind"]

    def before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)


def _link(rt: Runtime, prefix: str, count: int, first_device: int) -> int:
    # ``count`` actions on two named devices each, plus one resolved from an officer's assignment
    with transaction(rt.sessions) as s:
        ids = []
        for n in range(count):
            start = T0 + timedelta(minutes=n)
            named = [DEVICES[(first_device + n) % 4], DEVICES[(first_device + n + 1) % 4]]
            act = cd.action(
                s, f"{prefix}{n}", start, start + timedelta(seconds=90), devices=named, officers=[(f"O{n % 3}", True)]
            )
            ids.append(act.id)
        with counting_selects(rt) as seen:
            linking.on_actions_changed(s, rt.settings, ids, "t", now=T0 + timedelta(days=1))
    return len(seen)


def test_selects_per_batch_do_not_grow_with_the_actions(runtime: Runtime, media: MediaFactory, tmp_path: Path) -> None:
    rt = runtime
    with transaction(rt.sessions) as s:
        for serial in DEVICES:
            cd.device(s, serial)
        cd.assign(s, "D4", "O0", T0 - timedelta(days=1), None)
        for n, serial in enumerate(DEVICES):
            path = media.make(tmp_path / f"r{n}.mp4", seconds=5, tone=300 + 17 * n)
            cd.stored_recording(s, rt.store, path, serial, T0 + timedelta(minutes=n))
    few = _link(rt, "F", 3, 0)
    many = _link(rt, "M", 60, 1)
    assert many == few  # the same queries for 60 actions as for 3
    with transaction(rt.sessions) as s:
        linked = s.execute(select(Action.action_id, ActionRecording.recording_id).join(ActionRecording)).all()
    # what was read in bulk still links: every action overlapping a recording of its devices got it
    assert {aid for aid, _ in linked} >= {"F0", "F1", "F2", "M0", "M1", "M2", "M3"}
