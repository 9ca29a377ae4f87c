"""What ingest looks up about a file it has seen before (stations and devices are created through
:class:`audit.registry.Registry`, the one find-or-create, so every creation is an audit event)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Sighting, Station


def find_sighting(session: Session, station_code: str, path: str, size: int, mtime_ns: int) -> Sighting | None:
    """The sighting of exactly this file version at this path, if it was handled before."""
    return session.scalar(
        select(Sighting)
        .join(Station, Station.id == Sighting.station_id)
        .where(
            Station.code == station_code,
            Sighting.path == path,
            Sighting.size == size,
            Sighting.mtime_ns == mtime_ns,
        )
        .order_by(Sighting.id)
        .limit(1)
    )
