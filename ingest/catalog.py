"""Stations and devices named by files: created on first sight, details added later by administrators."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import Device, Sighting, Station


def get_or_create_station(session: Session, code: str) -> Station:
    """The station with this code, created if new (a concurrent creator makes the caller's commit retry)."""
    station = session.scalar(select(Station).where(Station.code == code))
    if station is None:
        station = Station(code=code)
        session.add(station)
        session.flush()
    return station


def get_or_create_device(session: Session, serial: str) -> Device:
    """A device is known from the first file that names it."""
    device = session.scalar(select(Device).where(Device.serial == serial))
    if device is None:
        device = Device(serial=serial)
        session.add(device)
        session.flush()
    return device


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
