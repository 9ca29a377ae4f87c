"""Signed-in browsers (SPEC §11): server-side sessions, CSRF tokens, sign-in throttling and viewings.

The cookie holds a random session key; only its SHA-256 is stored, beside the API token it stands for, so a
leaked cookie never reveals a token and signing out (or revoking the token) ends the session at once. These
are plain functions over a database session: the web routes call them at the edge.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, bindparam, delete, func, select, update
from sqlalchemy.orm import Session, aliased

from api.auth import Principal, hash_token, principal_from, principal_select
from storage.basics import utcnow
from storage.models import ApiToken, LoginFailure, WebSession, WebViewing

SESSION_COOKIE = "bwc_session"
LOGIN_CSRF_COOKIE = "bwc_login_csrf"
# Refused sign-ins allowed in THROTTLE_WINDOW, from one client address and against one token's name.
THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_CLIENT = 10
MAX_FAILURES_PER_NAME = 5
# A viewing idle this long is over: the next byte read is a new viewing, audited again.
VIEWING_IDLE = timedelta(minutes=30)


@dataclass(frozen=True)
class SignedIn:
    """A live web session and the principal (token holder) it stands for."""

    session_id: int
    csrf: str
    principal: Principal


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def same_secret(given: str | None, expected: str | None) -> bool:
    """Constant-time comparison of a submitted form token with the one we issued (neither may be empty)."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def start_session(session: Session, token_id: int, hours: float) -> tuple[str, WebSession]:
    """A new session for this token: the random key (for the cookie, never stored) and its row."""
    key = secrets.token_urlsafe(32)
    now = utcnow()
    row = WebSession(
        key_hash=_key_hash(key),
        token_id=token_id,
        csrf=new_csrf(),
        created_at=now,
        expires_at=now + timedelta(hours=hours),
    )
    session.add(row)
    session.flush()
    return key, row


_SIGNED_IN = (
    principal_select(WebSession.id, WebSession.csrf)
    .join(WebSession, WebSession.token_id == ApiToken.id)
    .where(
        WebSession.key_hash == bindparam("key"),
        WebSession.revoked_at.is_(None),
        WebSession.expires_at > bindparam("now"),
        ApiToken.revoked_at.is_(None),
    )
)


def signed_in(session: Session, key: str | None) -> SignedIn | None:
    """The live session behind a cookie: unexpired, not signed out, its token not revoked. One query, the API's
    read of a caller (``api.auth.principal_select``) joined to the session, so a page knows its caller, units and
    live grants as a bearer request does."""
    if not key or len(key) > 128:
        return None
    rows = session.execute(_SIGNED_IN, {"key": _key_hash(key), "now": utcnow()}).all()
    if not rows:
        return None
    web_id, csrf = rows[0][-2:]
    return SignedIn(web_id, csrf, principal_from(rows))


def end_session(session: Session, session_id: int) -> None:
    session.execute(
        update(WebSession)
        .where(WebSession.id == session_id, WebSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def token_name_of(session: Session, secret: str) -> str | None:
    """The name of the token (live or revoked) with this secret, so that failures count against it too."""
    return session.scalar(select(ApiToken.name).where(ApiToken.token_hash == hash_token(secret)).limit(1))


def throttled(session: Session, client: str, token_name: str | None, now: datetime | None = None) -> bool:
    """Whether this client, or attempts at this token's name, used up the refused sign-ins of the window."""
    since = (now or utcnow()) - THROTTLE_WINDOW
    by_client = session.scalar(
        select(func.count()).select_from(LoginFailure).where(LoginFailure.client == client, LoginFailure.at > since)
    )
    if (by_client or 0) >= MAX_FAILURES_PER_CLIENT:
        return True
    if token_name is None:
        return False
    by_name = session.scalar(
        select(func.count())
        .select_from(LoginFailure)
        .where(LoginFailure.token_name == token_name, LoginFailure.at > since)
    )
    return (by_name or 0) >= MAX_FAILURES_PER_NAME


def record_failure(session: Session, client: str, token_name: str | None) -> None:
    """Count one refused sign-in; failures older than the window count no more and are dropped here."""
    now = utcnow()
    session.execute(delete(LoginFailure).where(LoginFailure.at <= now - THROTTLE_WINDOW))
    session.add(LoginFailure(at=now, client=client[:64], token_name=token_name))
    session.flush()


def open_viewing(session: Session, session_id: int, recording_id: int) -> int:
    """A page shows a recording to be played: a new viewing, whose first byte read will be audited."""
    row = WebViewing(session_id=session_id, recording_id=recording_id, opened_at=utcnow())
    session.add(row)
    session.flush()
    return row.id


def viewing_to_audit(session: Session, session_id: int, recording_id: int) -> int | None:
    """The viewing a byte read belongs to, when that read must be audited (its first); None when it need not.

    The latest viewing of this recording in this session is taken unless idle for ``VIEWING_IDLE``; when there
    is none a new one starts. The claim is one conditional UPDATE, so of two concurrent first reads at least one
    is audited (both, at worst: more audit, never less).
    """
    now = utcnow()
    latest = session.scalars(
        select(WebViewing)
        .where(WebViewing.session_id == session_id, WebViewing.recording_id == recording_id)
        .order_by(WebViewing.id.desc())
        .limit(1)
    ).first()
    if latest is None or (latest.last_read_at is not None and now - latest.last_read_at > VIEWING_IDLE):
        viewing_id = open_viewing(session, session_id, recording_id)
    else:
        viewing_id = latest.id
    claimed: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(WebViewing)
        .where(WebViewing.id == viewing_id, WebViewing.read_at.is_(None))
        .values(read_at=now, last_read_at=now)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount:
        return viewing_id
    session.execute(
        update(WebViewing)
        .where(WebViewing.id == viewing_id)
        .values(last_read_at=now)
        .execution_options(synchronize_session=False)
    )
    return None


@dataclass(frozen=True)
class Purged:
    """What one purge deleted."""

    sessions: int
    viewings: int


def purge_expired(session: Session, now: datetime) -> Purged:
    """Delete sessions no cookie can use any more (expired or signed out) and viewings that are over.

    Both tables would otherwise grow with every sign-in and every recording played. A viewing goes only when
    its session goes or when every viewing of its recording in its session has been idle ``VIEWING_IDLE``:
    the next byte read would then start a new viewing anyway, and that read is audited, so purging never
    saves a read from its ``evidence.read`` event.
    """
    dead = select(WebSession.id).where((WebSession.expires_at <= now) | WebSession.revoked_at.is_not(None))
    live = aliased(WebViewing)
    still_watched = (
        select(live.id)
        .where(
            live.session_id == WebViewing.session_id,
            live.recording_id == WebViewing.recording_id,
            func.coalesce(live.last_read_at, live.opened_at) > now - VIEWING_IDLE,
        )
        .exists()
    )
    viewings: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        delete(WebViewing)
        .where(WebViewing.session_id.in_(dead) | ~still_watched)
        .execution_options(synchronize_session=False)
    )
    sessions: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        delete(WebSession)
        .where((WebSession.expires_at <= now) | WebSession.revoked_at.is_not(None))
        .execution_options(synchronize_session=False)
    )
    return Purged(sessions=sessions.rowcount, viewings=viewings.rowcount)
