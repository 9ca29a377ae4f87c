"""Fixity (SPEC §5, §9): re-hash stored objects, record every result as an event, re-judge what a failure touches.

Decisions:
- The store tells a changed object (``mismatch``) from a lost one (``missing``); both are findings.
- Hashing runs outside any transaction (an object may be gigabytes; the SQLite write lock must not wait on it);
  each result is then written in its own short transaction, so an interrupted run keeps what it checked.
- A recording's ``fixity_ok`` feeds the ``integrity`` reason of coverage: when it turns false (or back to true
  after a restore) the actions it touches are re-judged through the linking entry point.
- Sidecars are checked too; a failed sidecar is a finding of its own and does not change its recording's verdict
  (the footage itself is intact).
- A sample takes the objects checked least recently first (never-checked ones before all others), so repeated
  samples walk the whole store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from audit.linking import on_recordings_changed
from config.settings import Settings
from storage.basics import utcnow
from storage.db import transaction
from storage.events import append_event
from storage.models import Recording, Sidecar
from storage.objects import FIXITY_OK, ObjectStore, check_fixity

log = logging.getLogger(__name__)

EVENT_KIND = "fixity.checked"


@dataclass(frozen=True)
class Target:
    """One stored object to re-hash: a recording or a sidecar."""

    kind: str  # recording | sidecar
    id: int
    sha256: str
    name: str

    @property
    def subject(self) -> str:
        return f"{self.kind}:{self.id}"


@dataclass(frozen=True)
class Checked:
    target: Target
    result: str  # ok | mismatch | missing


@dataclass
class FixityReport:
    """What one run checked; ``findings`` are the mismatched and missing objects."""

    checked: list[Checked] = field(default_factory=list)

    @property
    def findings(self) -> list[Checked]:
        return [c for c in self.checked if c.result != FIXITY_OK]

    def as_json(self) -> dict[str, Any]:
        """The shape of ``bwc fixity --format json``."""
        counts: dict[str, int] = {}
        for c in self.checked:
            counts[c.result] = counts.get(c.result, 0) + 1
        return {
            "checked": len(self.checked),
            "counts": counts,
            "findings": [
                {
                    "kind": c.target.kind,
                    "id": c.target.id,
                    "sha256": c.target.sha256,
                    "name": c.target.name,
                    "result": c.result,
                }
                for c in self.findings
            ],
        }


def select_targets(
    session: Session, *, sample: int | None = None, older_than_days: float | None = None, now: datetime | None = None
) -> list[Target]:
    """Every object, or the ``sample`` least recently checked; ``older_than_days`` skips recently checked ones."""
    cutoff = (now or utcnow()) - timedelta(days=older_than_days) if older_than_days is not None else None
    found: list[tuple[datetime | None, Target]] = []
    for model, kind in ((Recording, "recording"), (Sidecar, "sidecar")):
        query = select(model.id, model.sha256, model.original_name, model.fixity_checked_at)
        if cutoff is not None:
            query = query.where((model.fixity_checked_at.is_(None)) | (model.fixity_checked_at < cutoff))
        query = query.order_by(model.fixity_checked_at.is_not(None), model.fixity_checked_at, model.id)
        if sample is not None:
            query = query.limit(sample)
        found += [(at, Target(kind, rid, sha, name)) for rid, sha, name, at in session.execute(query)]
    if sample is None:
        return [t for _at, t in found]
    found.sort(key=lambda item: (item[0] is not None, item[0] or datetime.min, item[1].kind, item[1].id))
    return [t for _at, t in found[:sample]]


def record_result(session: Session, settings: Settings, checked: Checked, actor: str, now: datetime) -> None:
    """Store one result on its row, as an event, and re-judge the actions of a recording whose integrity changed."""
    target = checked.target
    row = session.get(Recording, target.id) if target.kind == "recording" else session.get(Sidecar, target.id)
    ok = checked.result == FIXITY_OK
    before = None if row is None else row.fixity_ok
    if row is not None:
        row.fixity_ok = ok
        row.fixity_checked_at = now
    details = {"sha256": target.sha256, "result": checked.result, "name": target.name}
    append_event(session, EVENT_KIND, target.subject, details, actor=actor)
    if target.kind == "recording" and row is not None and (before is False) != (not ok):
        on_recordings_changed(session, settings, [target.id], actor)


def run_checks(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    settings: Settings,
    targets: Sequence[Target],
    actor: str,
    progress: Callable[[int], None] | None = None,
) -> FixityReport:
    """Re-hash each target and commit its result at once; the caller picks the targets."""
    report = FixityReport()
    for target in targets:
        checked = Checked(target, check_fixity(store, target.sha256))
        with transaction(sessions) as session:
            record_result(session, settings, checked, actor, utcnow())
        report.checked.append(checked)
        if checked.result != FIXITY_OK:
            log.warning("fixity.failed %s sha256=%s result=%s", target.subject, target.sha256, checked.result)
        if progress is not None:
            progress(1)
    return report


def sample_forever(
    sessions: sessionmaker[Session],
    store: ObjectStore,
    settings: Settings,
    stop: threading.Event,
    wait: Callable[[float], bool] | None = None,
) -> None:
    """``bwc run``'s schedule: one object every 3600 / ``fixity_sample_per_hour`` seconds until ``stop`` is set."""
    per_hour = settings.fixity_sample_per_hour
    if per_hour <= 0:
        return
    wait = wait or stop.wait
    interval = 3600.0 / per_hour
    while not wait(interval):
        try:
            with transaction(sessions) as session:
                targets = select_targets(session, sample=1)
            run_checks(sessions, store, settings, targets, "fixity-schedule")
        except Exception:  # a store that is away now may answer at the next turn; the log says why
            log.exception("fixity.sample_failed")
