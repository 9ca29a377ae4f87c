"""Signed checkpoints of the audit log and the proofs served against the latest one (SPEC §9).

A checkpoint is made (``make_checkpoint``) by ``bwc run`` at least every minute while events arrive and by
``bwc audit checkpoint``; on PostgreSQL one replica at a time (a transaction-scoped advisory lock; the others
wait, then find the work done). Each new checkpoint extends the stored tree from the previous checkpoint's
size and is refused unless it is consistent with the previous one. The caller commits.

Durability: the service makes its checkpoints in a ``storage.db.derived_transaction`` (the checkpointer,
``bwc audit checkpoint``), whose commit does not wait for the disk (PostgreSQL ``synchronous_commit = off``,
SQLite ``synchronous=NORMAL``): a crash right after may lose the checkpoint row and its tree rows, never
anything else. That is safe because what it loses is derived: the events it covered were committed durably
before it could read them, the database's log of commits is one sequence (a lost commit takes every later
one with it, so nothing durable can refer to it), and the next checkpoint rebuilds the same tree from the same
events. A note already handed out is never contradicted: the tree of its first ``size`` events has the same
root, every later checkpoint is consistent with it, and at the same size the note is byte for byte the same
(Ed25519 signatures are deterministic). A caller that appends events and checkpoints in one transaction uses
an ordinary one.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass

from sqlalchemy import BigInteger, Integer, LargeBinary, String, column, insert, select, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import TextualSelect

from audit import merkle, notes, tree
from audit.notes import Checkpoint, Signer
from config.errors import BwcError, Conflict, NotFound
from storage.basics import utcnow
from storage.bulk import table_of
from storage.events import leaf_bytes
from storage.models import AuditCheckpoint
from storage.types import UTCDateTime

log = logging.getLogger(__name__)

CHECKPOINT_LOCK = 7240612  # beside events.py's 7240611, which serializes appends
NO_CHECKPOINT_YET = "no audit checkpoint yet: one is made within a minute while events arrive"


class NoCheckpoint(Conflict):
    """No checkpoint covers the event yet; the next one is made within a minute (or by `bwc audit checkpoint`)."""

    code = "not_checkpointed"


@dataclass(frozen=True)
class EventProof:
    """An event's leaf bytes and its tlog-proof against the latest checkpoint."""

    seq: int
    index: int
    leaf: bytes
    proof: str

    def as_json(self) -> dict[str, object]:
        return {"seq": self.seq, "index": self.index, "leaf": base64.b64encode(self.leaf).decode(), "proof": self.proof}


def latest(session: Session) -> AuditCheckpoint | None:
    """The newest checkpoint (the largest, since sizes only grow)."""
    return session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.size.desc()).limit(1)).first()


LATEST_SQL = (
    "SELECT (SELECT max(seq) FROM audit_events), c.size, c.root_hash FROM (SELECT 1 AS one) AS o "
    "LEFT JOIN (SELECT size, root_hash FROM audit_checkpoints ORDER BY size DESC LIMIT 1) AS c ON 1 = 1"
)


def make_checkpoint(session: Session, signer: Signer) -> AuditCheckpoint:
    """Sign the log as it stands now, unless the latest checkpoint already covers every event."""
    if session.get_bind().dialect.name == "postgresql":
        tree.raw_rows(session, f"SELECT pg_advisory_xact_lock({CHECKPOINT_LOCK})")
    # the latest checkpoint's size and root and the log's size in one raw round trip (the two ORM queries were
    # a good part of what a checkpoint costs whatever its size); the checkpoint's row only when it is the answer
    session.flush()  # what the ORM's own queries would see (they flush first)
    [(size, old_size, old_root_hex)] = tree.raw_rows(session, LATEST_SQL)
    size, old_size = int(size or 0), int(old_size or 0)  # type: ignore[call-overload]
    if old_root_hex is not None and size == old_size:
        previous = latest(session)
        assert previous is not None
        return previous
    root, consistency = tree.extend(session, old_size, size)
    if old_root_hex is not None:
        old_root = bytes.fromhex(str(old_root_hex))
        try:
            merkle.verify_consistency(old_size, size, old_root, root, consistency)
        except merkle.MerkleError:
            raise BwcError(
                f"the audit log no longer matches checkpoint {old_size}: run `bwc audit verify`",
                code="audit_log_inconsistent",
            ) from None
    note = notes.sign_checkpoint(Checkpoint(signer.name, size, root), signer)
    row = {"size": size, "root_hash": root.hex(), "note": note, "created_at": utcnow()}
    # a Core insert, not the ORM's unit of work: its flush cost more than the statement (the caller only reads
    # the returned row's values; the session's own queries find it in the database)
    inserted = session.connection().execute(insert(table_of(AuditCheckpoint)), row).inserted_primary_key
    assert inserted is not None  # a single-row insert always has its key
    log.info("audit.checkpoint size=%d root=%s", size, row["root_hash"])
    return AuditCheckpoint(id=inserted[0], **row)


def _require(session: Session) -> AuditCheckpoint:
    checkpoint = latest(session)
    if checkpoint is None:
        raise NoCheckpoint(NO_CHECKPOINT_YET)
    return checkpoint


# One statement for a proof: the event, the latest checkpoint, and per level from 6 (while the tree has nodes
# there) two blocks of its stored level (tree.block_of): the one holding the leaf's sibling (a BIGINT parameter,
# the same for the levels of one stored level) and the one holding the level's last node at the checkpoint's
# size, (((size >> level) - 1) << j) / BLOCK with j = level % STEP. The wanted blocks are rows joined on the
# whole primary key, so that both databases look each one up (PostgreSQL scanned the level for an IN of
# computed values). Level 0 is the events' leaf hashes: for a wanted block of level 0 (the leaf's own and the
# one holding the right edge, at most two) its up to 64 events, joined on a seq range of the primary key.
def _proof_sql(aggregate: str) -> TextualSelect:
    return text(
        "WITH lv(level, base, j, sibling) AS (VALUES "
        + ", ".join(
            f"({lv}, {lv - lv % tree.STEP}, {lv % tree.STEP}, CAST(:s{lv} AS BIGINT))" for lv in range(tree.MAX_LEVELS)
        )
        + "), newest AS (SELECT size, note FROM audit_checkpoints ORDER BY size DESC LIMIT 1), "
        "wanted AS (SELECT base AS level, sibling AS block FROM lv, newest WHERE (newest.size >> level) > 0 "
        f"UNION SELECT base, (((newest.size >> level) - 1) << j) / {tree.BLOCK} FROM lv, newest "
        "WHERE (newest.size >> level) > 0) "
        "SELECT e.seq, e.at, e.actor, e.kind, e.subject, e.details, newest.size, newest.note, "
        "b.level, b.block, b.hashes, "
        f"CASE WHEN wanted.level = 0 THEN (SELECT {aggregate}(CAST(l.seq AS TEXT) || ' ' || l.leaf_hash, ',') "
        f"FROM audit_events l WHERE l.seq > wanted.block * {tree.BLOCK} "
        f"AND l.seq <= (wanted.block + 1) * {tree.BLOCK}) END AS leaves "
        "FROM audit_events e "
        "LEFT JOIN newest ON 1 = 1 "
        "LEFT JOIN wanted ON newest.size >= e.seq "
        "LEFT JOIN audit_tree_blocks b ON wanted.level > 0 AND b.level = wanted.level AND b.block = wanted.block "
        "WHERE e.seq = :seq"
    ).columns(
        column("seq", BigInteger),
        column("at", UTCDateTime),
        column("actor", String),
        column("kind", String),
        column("subject", String),
        column("details", String),
        column("size", BigInteger),
        column("note", String),
        column("level", Integer),
        column("block", BigInteger),
        column("hashes", LargeBinary),
        column("leaves", String),
    )


# a wanted block of level 0 comes as one string of "seq leaf_hash" pairs, in no promised order (SQLite before
# 3.44 has no ORDER BY in an aggregate): a row per block, not per leaf, through SQLAlchemy's result processing
PROOF_SQL = {"postgresql": _proof_sql("string_agg"), "sqlite": _proof_sql("group_concat")}


def event_proof(session: Session, seq: int) -> EventProof:
    """The proof that event ``seq`` is in the tree the latest checkpoint signs, in one round trip."""
    params: dict[str, int] = {"seq": seq} | {f"s{lv}": b for lv, b in enumerate(tree.inclusion_blocks(max(seq - 1, 0)))}
    rows = session.execute(PROOF_SQL[session.get_bind().dialect.name], params).all()
    if not rows:
        raise NotFound(f"no audit event {seq}")
    first = rows[0]
    if first.size is None:
        raise NoCheckpoint(NO_CHECKPOINT_YET)
    if seq > first.size:
        raise NoCheckpoint(f"audit event {seq} is newer than the latest checkpoint ({first.size} events)")
    blocks = {(row.level, row.block): row.hashes for row in rows if row.level is not None}
    leaves = [pair.split(" ") for row in rows if row.leaves for pair in row.leaves.split(",")]
    blocks |= tree.blocks_of_leaves(leaves)
    hashes = tree.proof_from_blocks(merkle.inclusion_ranges(seq - 1, first.size), blocks)
    leaf = leaf_bytes(first.seq, first.at, first.actor, first.kind, first.subject, first.details)
    return EventProof(seq, seq - 1, leaf, notes.format_proof(seq - 1, hashes, first.note))


def consistency(session: Session, old_size: int, new_size: int) -> list[bytes]:
    """The consistency proof between the trees of the first ``old_size`` and ``new_size`` events."""
    checkpoint = _require(session)
    if not 0 <= old_size <= new_size:
        raise merkle.MerkleError(f"no consistency proof from size {old_size} to size {new_size}")
    if new_size > checkpoint.size:
        raise NoCheckpoint(f"size {new_size} is beyond the latest checkpoint ({checkpoint.size} events)")
    return tree.proof(session, merkle.consistency_ranges(old_size, new_size))
