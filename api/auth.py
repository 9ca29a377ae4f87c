"""API tokens (SPEC §8): bearer secrets of which only the SHA-256 is kept, each with one role."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from config.errors import BadInput, Conflict, NotFound
from storage.events import append_event
from storage.models import ApiToken, Station
from storage.types import INT32_MAX, iso, iso_or_none, utcnow

ROLES = ("admin", "station", "reviewer", "auditor")
TOKEN_PREFIX = "bwc_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the holder of one unrevoked token."""

    token_id: int
    name: str
    role: str
    station_id: int | None = None
    station_code: str | None = None

    @property
    def actor(self) -> str:
        """How audit events name this caller."""
        return f"token:{self.name}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token_secret() -> str:
    """A fresh secret, recognizable by its prefix when it leaks into a log or a repository."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_token(
    session: Session, *, role: str, name: str, station_code: str | None = None, actor: str = "cli"
) -> tuple[ApiToken, str]:
    """Store a new token's hash and return the row with the secret, which is never seen again."""
    if role not in ROLES:
        raise BadInput(f"unknown role {role!r}; use one of {', '.join(ROLES)}", code="bad_role")
    name = name.strip()
    if not name:
        raise BadInput("a token needs a name")
    if station_code and role != "station":
        raise BadInput("--station applies to station tokens only")
    live = select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
    if session.scalars(live).first() is not None:
        raise Conflict(f"a live token named {name!r} exists; revoke it first", code="token_exists")
    station = _station(session, station_code) if station_code else None
    secret = new_token_secret()
    token = ApiToken(name=name, role=role, token_hash=hash_token(secret), station_id=station.id if station else None)
    session.add(token)
    session.flush()
    append_event(
        session,
        "token.created",
        f"token:{token.id}",
        {"name": name, "role": role, "station": station_code},
        actor=actor,
    )
    return token, secret


def _station(session: Session, code: str) -> Station:
    station = session.scalars(select(Station).where(Station.code == code)).first()
    if station is None:
        station = Station(code=code)
        session.add(station)
        session.flush()
    return station


def list_tokens(session: Session) -> list[dict[str, Any]]:
    """Every token without its secret (there is none to show: only hashes are kept)."""
    rows = session.execute(
        select(ApiToken, Station.code).outerjoin(Station, Station.id == ApiToken.station_id).order_by(ApiToken.id)
    ).all()
    return [
        {
            "id": t.id,
            "name": t.name,
            "role": t.role,
            "station": code,
            "created_at": iso(t.created_at),
            "revoked_at": iso_or_none(t.revoked_at),
        }
        for t, code in rows
    ]


def revoke_token(session: Session, name_or_id: str, actor: str = "cli") -> ApiToken:
    """Revoke the live token with this name (or id); revoking twice is refused so that typos show."""
    cond = [ApiToken.name == name_or_id]
    if name_or_id.isascii() and name_or_id.isdigit() and int(name_or_id) <= INT32_MAX:  # else only a name
        cond.append(ApiToken.id == int(name_or_id))
    candidates = session.scalars(select(ApiToken).where(or_(*cond), ApiToken.revoked_at.is_(None))).all()
    if not candidates:
        raise NotFound(f"no live token named or numbered {name_or_id!r}")
    if len(candidates) > 1:
        raise BadInput(f"{name_or_id!r} matches several tokens; give the id")
    token = candidates[0]
    token.revoked_at = utcnow()
    session.flush()
    append_event(session, "token.revoked", f"token:{token.id}", {"name": token.name, "role": token.role}, actor=actor)
    return token


def authenticate(session: Session, secret: str) -> Principal | None:
    """The principal holding this secret, or None when it is unknown or revoked."""
    row = session.execute(
        select(ApiToken, Station.code)
        .outerjoin(Station, Station.id == ApiToken.station_id)
        .where(ApiToken.token_hash == hash_token(secret), ApiToken.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    token, code = row
    return Principal(token.id, token.name, token.role, token.station_id, code)
