"""Files that could not be stored yet: recorded with a reason, retried with exponential back-off (SPEC §4)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from config.settings import Settings
from storage.events import append_event
from storage.models import IngestFailure, Station

log = logging.getLogger(__name__)

# Reason codes shown by ``bwc ingest status``; store errors add their own (``digest_mismatch`` …).
UNSAFE_PATH = "unsafe_path"
CHANGED_WHILE_READING = "changed_while_reading"
STORE_UNAVAILABLE = "store_unavailable"
UNREADABLE = "unreadable"
VANISHED = "vanished"
DATABASE = "database_error"


def retry_delay(attempts: int, base_seconds: float, max_seconds: float) -> float:
    """Seconds to wait before the next try after ``attempts`` failed ones: doubling, capped."""
    if attempts < 1:
        return 0.0
    # Cap the exponent so that a long-failing file cannot overflow the float.
    return float(min(max_seconds, base_seconds * 2 ** min(attempts - 1, 60)))


def record_failure(
    session: Session,
    settings: Settings,
    station: Station | None,
    path: str,
    reason: str,
    error: str,
    now: datetime,
    actor: str,
) -> IngestFailure:
    """Upsert the open failure of (station, path) and log the audit event ``ingest.failed``."""
    station_id = station.id if station is not None else None
    failure = session.scalar(
        select(IngestFailure).where(IngestFailure.station_id == station_id, IngestFailure.path == path)
    )
    if failure is None or failure.resolved_at is not None:
        if failure is None:
            failure = IngestFailure(station_id=station_id, path=path, first_failed_at=now, attempts=0)
            session.add(failure)
        else:  # a new episode for a path that once failed and then went through
            failure.first_failed_at = now
            failure.attempts = 0
            failure.resolved_at = None
    failure.attempts += 1
    failure.reason = reason
    failure.last_error = error[:4000]
    failure.last_failed_at = now
    delay = retry_delay(failure.attempts, settings.retry_base_seconds, settings.retry_max_seconds)
    failure.next_attempt_at = now + timedelta(seconds=delay)
    session.flush()
    append_event(
        session,
        "ingest.failed",
        f"file:{station.code if station else '-'}:{path}",
        {"path": path, "reason": reason, "error": failure.last_error, "attempts": failure.attempts},
        actor=actor,
    )
    log.warning("ingest.failed path=%s reason=%s attempts=%d error=%s", path, reason, failure.attempts, error)
    return failure


def resolve_failure(session: Session, station: Station, path: str, now: datetime) -> bool:
    """Close the open failure of (station, path), if any; True when there was one."""
    failure = session.scalar(
        select(IngestFailure).where(
            IngestFailure.station_id == station.id,
            IngestFailure.path == path,
            IngestFailure.resolved_at.is_(None),
        )
    )
    if failure is None:
        return False
    failure.resolved_at = now
    session.flush()
    return True


def open_failures(session: Session, station_code: str | None = None) -> list[tuple[IngestFailure, str | None]]:
    """Unresolved failures with their station code, oldest first."""
    query = (
        select(IngestFailure, Station.code)
        .outerjoin(Station, Station.id == IngestFailure.station_id)
        .where(IngestFailure.resolved_at.is_(None))
        .order_by(IngestFailure.first_failed_at, IngestFailure.id)
    )
    if station_code is not None:
        query = query.where(Station.code == station_code)
    return [(f, code) for f, code in session.execute(query).all()]
