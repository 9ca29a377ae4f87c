"""API tokens (SPEC §8, §15): bearer secrets of which only the SHA-256 is kept, each with one role and,
for reviewers, the units whose evidence they may read."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, and_, bindparam, or_, select
from sqlalchemy.orm import Session

from audit.access import UNSCOPED_ROLES
from config.errors import BadInput, Conflict, NotFound
from storage.basics import INT32_MAX, iso, iso_or_none, utcnow
from storage.events import append_event
from storage.models import AccessGrant, ApiToken, Station, TokenUnit

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
    units: frozenset[str] = frozenset()
    # The grants to this holder that were live when the token was read, as (case, grant id, expires_at), in
    # grant order. A principal lives for one request, so these never outlive it: ``audit.access.scope_for``
    # takes them instead of asking again (and re-checks expiry).
    grants: tuple[tuple[str, int, datetime], ...] = ()

    @property
    def actor(self) -> str:
        """How audit events name this caller."""
        return f"token:{self.name}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token_secret() -> str:
    """A fresh secret, recognizable by its prefix when it leaks into a log or a repository."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


SCOPED_ROLE = "reviewer"  # the one role whose reads are limited to its units (admin and auditor see all)
MAX_UNIT_CODE = 128


def create_token(
    session: Session,
    *,
    role: str,
    name: str,
    station_code: str | None = None,
    units: Sequence[str] = (),
    actor: str = "cli",
) -> tuple[ApiToken, str]:
    """Store a new token's hash and return the row with the secret, which is never seen again."""
    if role not in ROLES:
        raise BadInput(f"unknown role {role!r}; use one of {', '.join(ROLES)}", code="bad_role")
    name = name.strip()
    if not name:
        raise BadInput("a token needs a name")
    if station_code and role != "station":
        raise BadInput("--station applies to station tokens only")
    codes = _unit_codes(role, units)
    live = select(ApiToken).where(ApiToken.name == name, ApiToken.revoked_at.is_(None))
    if session.scalars(live).first() is not None:
        raise Conflict(f"a live token named {name!r} exists; revoke it first", code="token_exists")
    station = _station(session, station_code) if station_code else None
    secret = new_token_secret()
    token = ApiToken(name=name, role=role, token_hash=hash_token(secret), station_id=station.id if station else None)
    session.add(token)
    session.flush()
    session.add_all(TokenUnit(token_id=token.id, unit_code=code) for code in codes)
    details: dict[str, Any] = {"name": name, "role": role, "station": station_code}
    if codes:
        details["units"] = list(codes)
    append_event(session, "token.created", f"token:{token.id}", details, actor=actor)
    return token, secret


def _unit_codes(role: str, units: Sequence[str]) -> list[str]:
    """The distinct unit codes of a reviewer token; other roles see everything or nothing, never by unit."""
    codes = sorted({u.strip() for u in units})
    if not codes:
        return []
    if role != SCOPED_ROLE:
        raise BadInput(f"--unit applies to reviewer tokens only ({role} tokens are not scoped by unit)")
    for code in codes:
        if not code or len(code) > MAX_UNIT_CODE or "\x00" in code:
            raise BadInput(f"unit code {code!r} must be 1 to {MAX_UNIT_CODE} characters", code="bad_unit")
    return codes


def token_units(session: Session, token_ids: Sequence[int]) -> dict[int, list[str]]:
    """Each token's unit codes, sorted, in one query."""
    found: dict[int, list[str]] = {}
    if token_ids:
        rows = session.execute(
            select(TokenUnit.token_id, TokenUnit.unit_code)
            .where(TokenUnit.token_id.in_(token_ids))
            .order_by(TokenUnit.unit_code)
        )
        for token_id, code in rows:
            found.setdefault(token_id, []).append(code)
    return found


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
    units = token_units(session, [t.id for t, _code in rows])
    return [
        {
            "id": t.id,
            "name": t.name,
            "role": t.role,
            "units": units.get(t.id, []),
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


# Built once with bound parameters (every request runs it; building it cost more than running it).
_SCOPED = ApiToken.role == SCOPED_ROLE
_PRINCIPAL_COLUMNS = 9


def principal_select(*extra: Any) -> Select[Any]:
    """The one read of a caller: token, station, units and the grants live at ``:now`` to its holder (a row per
    unit × grant), plus ``extra`` columns after them; the caller adds the row filter (token hash, web session)."""
    return (
        select(
            ApiToken.id,
            ApiToken.name,
            ApiToken.role,
            ApiToken.station_id,
            Station.code,
            TokenUnit.unit_code,
            AccessGrant.case_number,
            AccessGrant.id,
            AccessGrant.expires_at,
            *extra,
        )
        .select_from(ApiToken)
        .outerjoin(Station, Station.id == ApiToken.station_id)
        .outerjoin(TokenUnit, and_(TokenUnit.token_id == ApiToken.id, _SCOPED))
        .outerjoin(
            AccessGrant,
            and_(
                AccessGrant.holder == ApiToken.name,
                AccessGrant.revoked_at.is_(None),
                AccessGrant.expires_at > bindparam("now"),
                # plain comparisons, not ``not_in``: an ``IN`` list is an expanding parameter that SQLAlchemy
                # re-renders into the statement's text on every request
                *(ApiToken.role != role for role in sorted(UNSCOPED_ROLES)),
            ),
        )
        .order_by(AccessGrant.id)
    )


def principal_from(rows: Sequence[Row[Any]]) -> Principal:
    """The principal of the rows of one ``principal_select`` (at least one row)."""
    token_id, name, role, station_id, code = rows[0][:5]
    units = frozenset(row[5] for row in rows if row[5] is not None)
    grants: dict[int, tuple[str, int, datetime]] = {}
    for row in rows:
        case, grant_id, expires_at = row[6:_PRINCIPAL_COLUMNS]
        if grant_id is not None:
            grants[grant_id] = (case, grant_id, expires_at)
    return Principal(token_id, name, role, station_id, code, units, tuple(grants.values()))


_PRINCIPAL = principal_select().where(ApiToken.token_hash == bindparam("hash"), ApiToken.revoked_at.is_(None))


def authenticate(session: Session, secret: str, now: datetime | None = None) -> Principal | None:
    """The principal holding this secret, or None when it is unknown or revoked.

    One query reads the token, its station, its units and the grants live at ``now`` to its holder, since
    every request authenticates afresh (a revoked token or grant takes effect on the next request) and a
    query per part was most of a case lookup's database time.
    """
    # Core on the session's connection: the statement reads columns, not entities, and the ORM's execute
    # (compile state, ORM result) was half of this function's CPU on every request
    rows = session.connection().execute(_PRINCIPAL, {"hash": hash_token(secret), "now": now or utcnow()}).all()
    return principal_from(rows) if rows else None
