"""The Merkle tree over the audit events, kept in the database for proofs in O(log n) lookups (SPEC §9).

Appends stay as they were (one row, its leaf hash): the tree is extended only when a checkpoint is made,
from the previous checkpoint's size to the new one, by hashing the new leaves and the perfect subtrees they
complete. ``audit_tree_nodes`` then holds every perfect subtree (level 0: the leaf hashes) of the tree at the
latest checkpoint, so that any inclusion or consistency proof up to that size is a single lookup of its
O(log n) nodes, and ``bwc audit verify`` can name the first event that no longer matches the signed tree.
The leaf of event ``seq`` has index ``seq - 1``.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from audit import merkle
from audit.merkle import Node
from config.errors import BwcError
from storage.bulk import insert_rows, table_of
from storage.models import AuditEvent, AuditTreeNode

NODE_COLUMNS = ("level", "idx", "node_hash")
LOOKUP_BATCH = 500  # keys per query: well under every driver's parameter limit


class TreeIncomplete(BwcError):
    """The stored tree lacks a node it should hold, or the events have a hole: no proof can be made."""

    code = "audit_tree_incomplete"
    status = 500


def fetch_nodes(session: Session, keys: Iterable[Node]) -> dict[Node, bytes]:
    """The stored hashes of the given perfect subtrees (missing ones are simply absent).

    One statement per batch, as ``level = l AND idx IN (...)`` per level joined by OR: both databases answer
    that from the primary key (SQLite would scan the table for a row-value ``IN``). The keys are integers,
    written into the SQL as such; a proof is a few dozen of them, and building a SQLAlchemy expression for
    them would cost more than the lookup.
    """
    wanted = sorted({(int(level), int(idx)) for level, idx in keys})
    found: dict[Node, bytes] = {}
    conn = session.connection()
    for i in range(0, len(wanted), LOOKUP_BATCH):
        by_level: dict[int, list[str]] = {}
        for level, idx in wanted[i : i + LOOKUP_BATCH]:
            by_level.setdefault(level, []).append(str(idx))
        where = " OR ".join(f"(level = {lv} AND idx IN ({','.join(ix)}))" for lv, ix in by_level.items())
        rows = conn.exec_driver_sql(f"SELECT level, idx, node_hash FROM audit_tree_nodes WHERE {where}")
        found.update({(level, idx): bytes(h) for level, idx, h in rows})
    return found


def proof(session: Session, ranges: list[merkle.Range]) -> list[bytes]:
    """The hashes of ``ranges`` (from :func:`merkle.inclusion_ranges` or ``consistency_ranges``) from the store."""
    needed = merkle.nodes_for(ranges)
    nodes = fetch_nodes(session, needed)
    missing = needed - nodes.keys()
    if missing:
        level, idx = min(missing)
        raise TreeIncomplete(f"the stored audit tree lacks node {level}/{idx}: run `bwc audit verify`")
    return merkle.proof_from_nodes(ranges, nodes)


def root(session: Session, size: int) -> bytes:
    """The root of the tree of the first ``size`` events, from the stored nodes."""
    return proof(session, [(0, size)])[0] if size else merkle.EMPTY_ROOT


def _new_leaves(session: Session, old_size: int, new_size: int) -> list[bytes]:
    rows = session.execute(
        select(AuditEvent.seq, AuditEvent.leaf_hash)
        .where(AuditEvent.seq > old_size, AuditEvent.seq <= new_size)
        .order_by(AuditEvent.seq)
    )
    hashes = []
    for expected, (seq, leaf_hex) in enumerate(rows, start=old_size + 1):
        if seq != expected:
            raise TreeIncomplete(f"audit event {expected} is missing: run `bwc audit verify`")
        hashes.append(bytes.fromhex(leaf_hex))
    if len(hashes) != new_size - old_size:
        raise TreeIncomplete(f"audit event {old_size + len(hashes) + 1} is missing: run `bwc audit verify`")
    return hashes


def extend(session: Session, old_size: int, new_size: int) -> bytes:
    """Store the nodes the events ``old_size+1 .. new_size`` complete and return the new root (caller commits).

    Work is O(new events + log n): at each level at most one existing node (the left sibling of the first
    new one) is read back.
    """
    if new_size < old_size:
        raise TreeIncomplete(f"the audit log shrank from {old_size} to {new_size} events: run `bwc audit verify`")
    current = _new_leaves(session, old_size, new_size)
    first = old_size  # index of current[0] at this level
    fresh: dict[int, tuple[int, list[bytes]]] = {0: (first, current)}
    rows: list[tuple[int, int, bytes]] = [(0, old_size + i, h) for i, h in enumerate(current)]
    level = 0
    while (lo := old_size >> (level + 1)) < (hi := new_size >> (level + 1)):
        if 2 * lo < first:  # the first new parent's left child was completed by an earlier checkpoint
            old = fetch_nodes(session, [(level, 2 * lo)]).get((level, 2 * lo))
            if old is None:
                raise TreeIncomplete(f"the stored audit tree lacks node {level}/{2 * lo}: run `bwc audit verify`")
            current = [old, *current]
        current = [merkle.node_hash(current[2 * i], current[2 * i + 1]) for i in range(hi - lo)]
        level, first = level + 1, lo
        fresh[level] = (first, current)
        rows.extend((level, first + i, h) for i, h in enumerate(current))
    insert_rows(session, table_of(AuditTreeNode), NODE_COLUMNS, rows)
    if new_size == 0:
        return merkle.EMPTY_ROOT
    parts = merkle.perfect_nodes(0, new_size)
    known = {(lv, ix): fresh[lv][1][ix - fresh[lv][0]] for lv, ix in parts if _in(fresh, lv, ix)}
    known.update(fetch_nodes(session, [p for p in parts if p not in known]))
    if len(known) != len(parts):
        raise TreeIncomplete("the stored audit tree lacks the nodes of its own root: run `bwc audit verify`")
    return merkle.root_from_nodes(new_size, known)


def _in(fresh: dict[int, tuple[int, list[bytes]]], level: int, idx: int) -> bool:
    if level not in fresh:
        return False
    first, hashes = fresh[level]
    return first <= idx < first + len(hashes)
