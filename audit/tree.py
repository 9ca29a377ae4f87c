"""The Merkle tree over the audit events, kept in the database for proofs in O(log n) lookups (SPEC §9).

Appends stay as they were (one row, its leaf hash): the tree is extended only when a checkpoint is made,
from the previous checkpoint's size to the new one, by hashing the new leaves and the perfect subtrees they
complete. ``audit_tree_blocks`` then holds every perfect subtree of the tree at the latest checkpoint, level
0 being the leaf hashes, in blocks of ``BLOCK`` consecutive hashes of one level: a row per node would cost
a checkpoint about as much as the appends it covers, blocks cost it about 1/30 of a row per event. Any
inclusion or consistency proof up to that size is then one lookup of its O(log n) blocks, and ``bwc audit
verify`` can name the first event that no longer matches the signed tree. The leaf of event ``seq`` has
index ``seq - 1``; node ``(level, idx)`` is bytes ``32 * (idx % BLOCK)`` on of block ``(level, idx // BLOCK)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from sqlalchemy import and_, delete, or_
from sqlalchemy.orm import Session

from audit import merkle
from audit.merkle import HASH_SIZE, Node
from config.errors import BwcError
from storage.bulk import insert_rows, table_of
from storage.models import AuditTreeBlock

BLOCK = 64
BLOCK_COLUMNS = ("level", "block", "hashes")
BLOCK_PG_TYPES = ("int2", "int8", "bytea")
LOOKUP_BATCH = 500  # blocks per query: well under every driver's parameter limit
MAX_LEVELS = 62  # levels of a tree of up to 2**62 leaves (seq is a signed 64-bit integer)


class TreeIncomplete(BwcError):
    """The stored tree lacks a node it should hold, or the events have a hole: no proof can be made."""

    code = "audit_tree_incomplete"
    status = 500


def raw_rows(session: Session, sql: str, params: tuple[int, ...] = ()) -> list[tuple[object, ...]]:
    """Rows straight from the driver in the session's transaction (``?`` placeholders on both databases).

    For the hot paths only: SQLAlchemy's per-row result processing costs more than the work on each row.
    """
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        sql = sql.replace("?", "%s")
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def fetch_blocks(session: Session, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The stored blocks ``(level, block)`` asked for (missing ones are absent).

    One statement per batch, ``level = l AND block IN (...)`` per level joined by OR: both databases answer
    that from the primary key (SQLite would scan the table for a row-value ``IN``). The keys are integers,
    written into the SQL as such.
    """
    wanted = sorted({(int(level), int(block)) for level, block in keys})
    found: dict[tuple[int, int], bytes] = {}
    for i in range(0, len(wanted), LOOKUP_BATCH):
        by_level: dict[int, list[str]] = {}
        for level, block in wanted[i : i + LOOKUP_BATCH]:
            by_level.setdefault(level, []).append(str(block))
        where = " OR ".join(f"(level = {lv} AND block IN ({','.join(bs)}))" for lv, bs in by_level.items())
        sql = f"SELECT level, block, hashes FROM audit_tree_blocks WHERE {where}"
        for row_level, row_block, data in raw_rows(session, sql):
            found[(int(row_level), int(row_block))] = bytes(data)  # type: ignore[call-overload]
    return found


def nodes_of_blocks(blocks: Mapping[tuple[int, int], bytes], keys: Iterable[Node]) -> dict[Node, bytes]:
    """The hashes of the given perfect subtrees that ``blocks`` hold (missing ones are absent)."""
    found: dict[Node, bytes] = {}
    for level, idx in keys:
        data = blocks.get((level, idx // BLOCK), b"")
        h = data[HASH_SIZE * (idx % BLOCK) : HASH_SIZE * (idx % BLOCK + 1)]
        if len(h) == HASH_SIZE:
            found[(level, idx)] = h
    return found


def fetch_nodes(session: Session, keys: Iterable[Node]) -> dict[Node, bytes]:
    """The stored hashes of the given perfect subtrees (missing ones are absent)."""
    keys = list(keys)
    return nodes_of_blocks(fetch_blocks(session, {(level, idx // BLOCK) for level, idx in keys}), keys)


def proof_from_blocks(ranges: list[merkle.Range], blocks: Mapping[tuple[int, int], bytes]) -> list[bytes]:
    """The hashes of ``ranges`` from blocks already read; :class:`TreeIncomplete` when one lacks a node."""
    needed = merkle.nodes_for(ranges)
    nodes = nodes_of_blocks(blocks, needed)
    missing = needed - nodes.keys()
    if missing:
        level, idx = min(missing)
        raise TreeIncomplete(f"the stored audit tree lacks node {level}/{idx}: run `bwc audit verify`")
    return merkle.proof_from_nodes(ranges, nodes)


def proof(session: Session, ranges: list[merkle.Range]) -> list[bytes]:
    """The hashes of ``ranges`` (from :func:`merkle.inclusion_ranges` or ``consistency_ranges``) from the store."""
    keys = {(level, idx // BLOCK) for level, idx in merkle.nodes_for(ranges)}
    return proof_from_blocks(ranges, fetch_blocks(session, keys))


def inclusion_blocks(index: int) -> list[int]:
    """Per level from 0, the block holding the sibling subtree of leaf ``index`` at that level.

    An inclusion proof's other nodes are each the last node of a level at the tree's size (its right
    edge), so in the last block of that level: with these, one read serves a proof before the size is known.
    """
    return [((index >> level) ^ 1) // BLOCK for level in range(MAX_LEVELS)]


def root(session: Session, size: int) -> bytes:
    """The root of the tree of the first ``size`` events, from the stored nodes."""
    return proof(session, [(0, size)])[0] if size else merkle.EMPTY_ROOT


def _new_leaves(session: Session, old_size: int, new_size: int) -> bytes:
    """The recorded leaf hashes of events ``old_size+1 .. new_size``, joined in seq order.

    Only the hashes travel (one aggregated string on PostgreSQL): seq is the primary key, so as many rows as
    the range is long means none is missing.
    """
    where = "FROM audit_events WHERE seq > ? AND seq <= ?"
    text: object
    if session.get_bind().dialect.name == "postgresql":
        sql = f"SELECT count(*), string_agg(leaf_hash, '' ORDER BY seq) {where}"
        [(count, text)] = raw_rows(session, sql, (old_size, new_size))
    else:
        rows = raw_rows(session, f"SELECT leaf_hash {where} ORDER BY seq", (old_size, new_size))
        count = len(rows)
        try:
            text = "".join([h for (h,) in rows])  # type: ignore[misc]  # one call, not one a row
        except TypeError:  # a NULL leaf hash
            text = ""
    if count != new_size - old_size:
        raise TreeIncomplete(f"the audit events {old_size + 1}..{new_size} have a hole: run `bwc audit verify`")
    try:
        data = bytes.fromhex(text) if isinstance(text, str) else b""
    except ValueError:  # not hex
        data = b""
    if len(data) != HASH_SIZE * count:
        raise TreeIncomplete(
            f"the audit events {old_size + 1}..{new_size} hold a damaged leaf hash: run `bwc audit verify`"
        )
    return data


def _pairs(level: bytes, first: int, end: int) -> bytes:
    """The parents of the nodes ``first .. end-1`` (positions in the joined ``level``; ``first`` even), joined;
    an odd last node waits for its pair. node_hash inlined: this loop is most of a checkpoint's hashing."""
    sha256 = hashlib.sha256
    stop = HASH_SIZE * (end - (end - first) % 2)
    return b"".join(
        [sha256(b"\x01" + level[i : i + 2 * HASH_SIZE]).digest() for i in range(HASH_SIZE * first, stop, 2 * HASH_SIZE)]
    )


def extend(session: Session, old_size: int, new_size: int) -> tuple[bytes, list[bytes]]:
    """Store the nodes the events ``old_size+1 .. new_size`` complete (caller commits); return the new root
    and the consistency proof from ``old_size``, both from the nodes read and made here.

    Work is O(new events + log n) in four statements whatever the tree's height: read the new leaf hashes;
    read, in one query, the block per level that the previous checkpoint left short and the old nodes the new
    root and the proof need; delete the short blocks and any after them; write them anew (completed) with the
    new blocks. Each level is one joined string of hashes: a block is a slice of it.
    """
    if new_size < old_size:
        raise TreeIncomplete(f"the audit log shrank from {old_size} to {new_size} events: run `bwc audit verify`")
    levels: list[int] = []
    while (new_size >> len(levels)) > (old_size >> len(levels)):
        levels.append(len(levels))
    starts = {lv: (old_size >> lv) - (old_size >> lv) % BLOCK for lv in levels}  # first node of a rewritten block
    ranges = merkle.consistency_ranges(old_size, new_size)
    wanted = merkle.perfect_nodes(0, new_size) if new_size else []
    wanted += sorted(merkle.nodes_for(ranges))
    old_nodes = [(lv, ix) for lv, ix in wanted if lv not in starts or ix < starts[lv]]
    short = [(lv, starts[lv] // BLOCK) for lv in levels if starts[lv] < old_size >> lv]
    blocks = fetch_blocks(session, short + [(lv, ix // BLOCK) for lv, ix in old_nodes])
    current = _new_leaves(session, old_size, new_size)
    fresh: dict[int, bytes] = {}
    rows: list[tuple[int, int, bytes]] = []
    span = HASH_SIZE * BLOCK
    for level in levels:
        start, old_count, new_count = starts[level], old_size >> level, new_size >> level
        if start < old_count:
            data = blocks.get((level, start // BLOCK), b"")
            if len(data) != HASH_SIZE * (old_count - start):
                raise TreeIncomplete(f"the stored audit tree's block {level}/{start // BLOCK} is damaged")
            current = data + current
        fresh[level] = current
        rows.extend((level, start // BLOCK + i // span, current[i : i + span]) for i in range(0, len(current), span))
        # the parents pair up from the first even index of the level's new nodes
        current = _pairs(current, (old_size >> (level + 1)) * 2 - start, new_count - start)
    if levels:
        b = AuditTreeBlock
        session.execute(delete(b).where(or_(*(and_(b.level == lv, b.block >= starts[lv] // BLOCK) for lv in levels))))
        insert_rows(session, table_of(AuditTreeBlock), BLOCK_COLUMNS, rows, BLOCK_PG_TYPES)
    known = nodes_of_blocks(blocks, old_nodes)
    for lv, ix in wanted:
        if lv in fresh and ix >= starts[lv]:
            known[(lv, ix)] = fresh[lv][HASH_SIZE * (ix - starts[lv]) : HASH_SIZE * (ix - starts[lv] + 1)]
    if any(len(known.get(node, b"")) != HASH_SIZE for node in wanted):
        raise TreeIncomplete("the stored audit tree lacks nodes of its own root: run `bwc audit verify`")
    root = merkle.root_from_nodes(new_size, known) if new_size else merkle.EMPTY_ROOT
    return root, merkle.proof_from_nodes(ranges, known)
