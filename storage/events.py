"""Append-only audit events, written in the caller's transaction (SPEC §9).

An event's leaf bytes are its canonical JSON: sorted keys, no spaces, UTF-8, times as ISO 8601 UTC with
``Z``. Those bytes are what the Merkle tree hashes, so they must never change for a stored event.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session

from config.errors import Conflict
from storage.basics import iso, utcnow
from storage.bulk import insert_rows, table_of
from storage.models import TREE_BLOCK, TREE_STEP, AuditBlockRoot, AuditEvent
from storage.tree_hashes import HASH_SIZE, leaf_hashes, subtree_roots

SYSTEM_ACTOR = "system"
EVENT_COLUMNS = ("seq", "at", "actor", "kind", "subject", "details", "leaf_hash")
# as PostgreSQL receives them in a binary COPY: a third less server time and half the client's than text
EVENT_PG_TYPES = ("int8", "timestamptz", "text", "text", "text", "text", "text")


class AuditLogImmutable(Conflict):
    """Raised when code tries to change or delete a stored audit event."""

    code = "audit_log_immutable"


def canonical_json(value: Any) -> str:
    """The one serialization used for hashing: stable across runs, Python versions and backends."""
    return _ENCODE(value)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    raise TypeError(f"not serializable in an audit event: {type(value).__name__}")


# json.dumps with these options, built once: dumps builds an encoder per call, a third of the cost of a
# small event's details (an import writes about four events a row)
_ENCODE = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default).encode


def iso_utc(value: datetime) -> str:
    """An event's time as its leaf hashes it: the one formatter's fixed leaf form (microseconds, ``Z``)."""
    return iso(value, leaf=True)


def leaf_bytes(seq: int, at: datetime, actor: str, kind: str, subject: str, details: str) -> bytes:
    """The bytes of one Merkle leaf; ``details`` is the stored canonical JSON text."""
    body = canonical_json(
        {
            "seq": seq,
            "at": iso_utc(at),
            "actor": actor,
            "kind": kind,
            "subject": subject,
            "details": json.loads(details),
        }
    )
    return body.encode("utf-8")


def leaf_hash(data: bytes) -> str:
    """RFC 6962 leaf hash: SHA-256 over 0x00 followed by the leaf."""
    return hashlib.sha256(b"\x00" + data).hexdigest()


def lock_event_log(session: Session) -> None:
    """Serialize writers of the log until the transaction ends, so that seq is max+1 without holes.

    Also for a caller that must read the log and append depending on what it read. (SQLite: every write
    transaction already holds the database's one write lock from BEGIN IMMEDIATE.)
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(7240611)"))


def append_event(
    session: Session,
    kind: str,
    subject: str,
    details: dict[str, Any] | None = None,
    actor: str = SYSTEM_ACTOR,
) -> AuditEvent:
    """Add an event to the caller's transaction with the next gap-free sequence number."""
    lock_event_log(session)
    session.flush()
    seq = (session.scalar(select(func.max(AuditEvent.seq))) or 0) + 1
    at = utcnow()
    details_text = canonical_json(details or {})
    ev = AuditEvent(
        seq=seq,
        at=at,
        actor=actor,
        kind=kind,
        subject=subject,
        details=details_text,
        leaf_hash=leaf_hash(leaf_bytes(seq, at, actor, kind, subject, details_text)),
    )
    session.add(ev)
    session.flush()
    return ev


def append_events(
    session: Session,
    items: list[tuple[str, str, dict[str, Any]]],
    actor: str = SYSTEM_ACTOR,
    *,
    tree_blocks: bool = True,
) -> int:
    """Add many ``(kind, subject, details)`` events at once, in order, with consecutive gap-free seqs.

    The same leaves as :func:`append_event` would write, inserted in bulk (``COPY`` on PostgreSQL): a full
    recompute may record hundreds of thousands of link changes. With them, the root of every block of 64
    leaves (node ``(6, block)`` of the audit tree, ``audit.tree``) that these leaves fill completely: the
    leaves are at hand here, so their 63 node hashes a block cost no read, and a checkpoint then reads 32
    bytes per 64 events instead of the leaves (storing the 64 hashes instead would write every leaf hash a
    second time: ``audit_events.leaf_hash`` already holds them). ``tree_blocks=False`` leaves them to the
    checkpoint (what ``bench.audit`` compares against, and what the checkpoint must heal).
    """
    if not items:
        return 0
    lock_event_log(session)
    session.flush()
    first = (session.scalar(select(func.max(AuditEvent.seq))) or 0) + 1
    at = utcnow()
    at_text = iso_utc(at)
    a = canonical_json(actor)
    kinds: dict[str, str] = {}  # canonical JSON of the few kinds, once each
    plain = PLAIN.fullmatch
    fields, leaves = [], []
    for seq, (kind, subject, details) in enumerate(items, start=first):
        details_text = canonical_json(details)
        if _round_trips(details):
            k = kinds.get(kind) or kinds.setdefault(kind, canonical_json(kind))
            s = f'"{subject}"' if plain(subject) else canonical_json(subject)  # subjects rarely repeat
            leaves.append(_leaf_text(seq, at_text, a, k, s, details_text).encode("utf-8"))
        else:
            leaves.append(leaf_bytes(seq, at, actor, kind, subject, details_text))
        fields.append((seq, at, actor, kind, subject, details_text))
    # the leaf hashes in one call (the C loop: ~300 ns of CPU an event less than hashlib's per-hash set-up),
    # stored as hex; the block roots take the digests as they are
    digests = leaf_hashes(leaves)
    hexes = digests.hex()
    step = 2 * HASH_SIZE
    rows = [(*row, hexes[i : i + step]) for row, i in zip(fields, range(0, len(hexes), step), strict=True)]
    count = insert_rows(session, table_of(AuditEvent), EVENT_COLUMNS, rows, EVENT_PG_TYPES)
    if tree_blocks:
        roots = _block_roots(first - 1, digests)
        insert_rows(session, table_of(AuditBlockRoot), ROOT_COLUMNS, roots, ROOT_PG_TYPES)
    return count


ROOT_COLUMNS = ("block", "root")
ROOT_PG_TYPES = ("int8", "bytea")


def _block_roots(first_index: int, digests: bytes) -> list[tuple[int, bytes]]:
    """The ``(block, root)`` rows of the blocks whose ``TREE_BLOCK`` leaves all are in ``digests`` (the joined
    leaf hashes of leaf indices from ``first_index``).

    A block the rows only partly fill is left to the checkpoint: it holds leaves of another transaction, so
    that no two writers ever write the same root.
    """
    skip = -first_index % TREE_BLOCK
    whole = (len(digests) // HASH_SIZE - skip) // TREE_BLOCK
    if whole <= 0:
        return []
    roots = subtree_roots(digests[HASH_SIZE * skip : HASH_SIZE * (skip + whole * TREE_BLOCK)], TREE_STEP)
    first_block = (first_index + skip) // TREE_BLOCK
    return [(first_block + i, roots[i * HASH_SIZE : (i + 1) * HASH_SIZE]) for i in range(whole)]


# a string that canonical_json() writes as itself between quotes (it escapes only '"', '\\' and controls)
PLAIN = re.compile(r'[^"\\\x00-\x1f\x7f-\x9f\u2028\u2029]*')


def _leaf_text(seq: int, at_text: str, actor: str, kind: str, subject: str, details: str) -> str:
    # leaf_bytes() without parsing the details back: the canonical JSON of the leaf, keys in sorted order,
    # from the canonical JSON of each value. Valid only where _round_trips(details) holds.
    return f'{{"actor":{actor},"at":"{at_text}","details":{details},"kind":{kind},"seq":{seq},"subject":{subject}}}'


def _round_trips(value: dict[str, Any] | list[Any] | tuple[Any, ...]) -> bool:
    """True when canonical_json(json.loads(canonical_json(value))) is canonical_json(value): string keys only."""
    # by exact type first: scalars (nearly every value of an event) cost one set lookup, not an isinstance call
    # per container type and a recursive call (this runs for each of the ~4 events an imported row makes)
    if type(value) is dict or isinstance(value, dict):
        for key in value:
            if type(key) is not str:
                return False
        items: Any = value.values()
    else:
        items = value
    for item in items:
        if type(item) not in _SCALARS and isinstance(item, dict | list | tuple) and not _round_trips(item):
            return False
    return True


_SCALARS = frozenset({str, int, float, bool, type(None), datetime})


def event_details(ev: AuditEvent) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(ev.details)
    return result


@event.listens_for(Session, "before_flush")
def _refuse_audit_changes(session: Session, _ctx: Any, _instances: Any) -> None:
    for obj in list(session.dirty) + list(session.deleted):
        if isinstance(obj, AuditEvent) and (obj in session.deleted or session.is_modified(obj)):
            raise AuditLogImmutable(f"audit event {obj.seq} is append-only")
