"""The small transactions around an ingest: a failure report, and the after-ingest step on the source."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from audit.registry import Registry
from ingest.after import apply_after_ingest
from ingest.failures import record_failure
from ingest.outcome import IngestOutcome
from storage.db import transaction
from storage.events import append_event
from storage.models import Sighting
from storage.runtime import Runtime

log = logging.getLogger(__name__)

RECORD_TRIES = 3


def failed(
    rt: Runtime, station: str, path: str, reason: str, error: str, actor: str, now: datetime, kind: str = "media"
) -> IngestOutcome:
    """Record (or count again) the failure of this path and say so; the source file is left alone."""
    error = rt.settings.mask(error)  # the reason may quote a URL: ``last_error`` is shown to operators
    next_attempt = None
    for attempt in range(1, RECORD_TRIES + 1):
        try:
            with transaction(rt.sessions) as s:
                station_row = Registry(s, actor, origin="ingest").station(station)
                failure = record_failure(s, rt.settings, station_row, path, reason, error, now, actor)
                next_attempt = failure.next_attempt_at
            break
        except IntegrityError:
            # Another worker created the same station (or failure row) first: go again and find it.
            if attempt == RECORD_TRIES:
                log.error("ingest.failure_not_recorded path=%s reason=%s: lost a race %d times", path, reason, attempt)
        except SQLAlchemyError as exc:  # the database is down too: the watcher retries, the log tells
            log.error(
                "ingest.failure_not_recorded path=%s reason=%s db_error=%s", path, reason, rt.settings.mask(str(exc))
            )
            break
    return IngestOutcome("failed", path, station, kind=kind, reason=reason, error=error, next_attempt_at=next_attempt)


def after_ingest(
    rt: Runtime,
    source: Path,
    relpath: str,
    subject: str,
    actor: str,
    sighting_id: int | None = None,
) -> str | None:
    """Keep, move or delete a committed source, then record it; None when the file system refused."""
    mode = rt.settings.after_ingest
    try:
        done, dest = apply_after_ingest(mode, source, relpath, rt.settings.done_dir)
    except OSError as exc:
        # The evidence is stored; the file just stays. The next pass over it tries again.
        log.error("ingest.after_failed path=%s mode=%s error=%s", relpath, mode, exc)
        return None
    if done == "kept" and sighting_id is None:
        return done
    with transaction(rt.sessions) as s:
        if sighting_id is not None:
            sighting = s.get(Sighting, sighting_id)
            if sighting is not None:
                sighting.after_ingest = done
        if done != "kept":
            details = {"path": relpath, "action": done}
            if dest is not None and rt.settings.done_dir is not None:
                details["to"] = str(Path(dest).relative_to(rt.settings.done_dir).as_posix())
            append_event(s, "ingest.after", subject, details, actor=actor)
    return done
