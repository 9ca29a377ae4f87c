"""Re-judging every action (after a policy change, or by hand), one committed batch at a time.

Each batch is its own write transaction and holds the event-log lock only while it runs, so an ingest, an
import or a reviewer's link waits for one batch at most, never for the whole run. A batch reads the actions'
links fresh and takes the lock before it reads, so it never races a writer; an interrupted run leaves every
finished batch consistent, and running it again finishes the job (a batch with nothing to change writes only
``coverage_computed_at``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select, text
from sqlalchemy.orm import Session, sessionmaker

from audit.coverage import Policy
from audit.findings_sync import follow_verdicts
from audit.linking.load import BulkData
from audit.linking.sync import load_span, process_states
from config.settings import Settings
from storage.db import reading
from storage.events import lock_event_log
from storage.models import Action

log = logging.getLogger(__name__)

BATCH = 500
# SQLite has no queue for its write lock: between two batches, leave waiting writers (polling every couple
# of milliseconds, see storage.db.begin_immediate) a moment to take it; PostgreSQL's lock queue is fair.
SQLITE_GAP_SECONDS = 0.01


@dataclass(frozen=True)
class Recomputed:
    """What a full recompute did: actions processed, and how many of them got another verdict."""

    actions: int
    verdicts_changed: int


def recompute_all(
    sessions: sessionmaker[Session],
    settings: Settings,
    now: datetime,
    actor: str,
    progress: Callable[[int], None] | None = None,
) -> Recomputed:
    """Resolve, relink and recompute every action, committing each batch; ``progress`` runs after each commit."""
    policy = Policy.from_settings(settings)
    with reading(sessions) as session:
        data = BulkData(session)
    done = changed = 0
    last_id = 0
    gap = SQLITE_GAP_SECONDS if sessions.kw["bind"].dialect.name == "sqlite" else 0.0
    with _one_connection(sessions) as batch_sessions:
        while True:
            with batch_sessions() as session, session.begin():
                lock_event_log(session)  # before reading: no writer changes these actions under the batch
                query = select(Action.id).where(Action.id > last_id).order_by(Action.id).limit(BATCH)
                batch = list(session.scalars(query))
                if not batch:
                    break
                data.refresh(session)
                # the batch is every action with an id in [first, last]: read them by range, not by a list of ids
                states = load_span(session, batch[0], batch[-1])
                before = {state.id: state.verdict for state in states}
                results = process_states(session, data, policy, states, now, actor, resolve_devices=True)
                follow_verdicts(session, settings, states, now, actor)  # findings (SPEC §13), in bulk too
                changed += sum(1 for aid, result in results.items() if before[aid] != result.verdict)
            last_id = batch[-1]
            done += len(batch)
            if progress is not None:
                progress(len(batch))
            if gap:
                time.sleep(gap)
    log.info("coverage.recompute_all actions=%d verdicts_changed=%d", done, changed)
    return Recomputed(done, changed)


@contextmanager
def _one_connection(sessions: sessionmaker[Session]) -> Iterator[sessionmaker[Session]]:
    # Every batch on one connection, so that what SQLite caches for one batch serves the next.
    engine = sessions.kw["bind"]
    with engine.connect() as conn, _big_page_cache(conn):
        yield sessionmaker(bind=conn, expire_on_commit=False)


@contextmanager
def _big_page_cache(conn: Connection) -> Iterator[None]:
    # SQLite's default 2 MiB page cache thrashes on a full recompute's random index inserts (links, events)
    # and makes it grow faster than linearly; give this connection 256 MiB while it runs.
    if conn.dialect.name != "sqlite":
        yield
        return
    previous = conn.execute(text("PRAGMA cache_size")).scalar_one()
    conn.execute(text("PRAGMA cache_size = -262144"))
    conn.commit()
    try:
        yield
    finally:
        conn.rollback()
        conn.execute(text(f"PRAGMA cache_size = {int(previous)}"))
        conn.commit()
