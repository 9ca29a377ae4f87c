"""The Merkle tree over the audit events, kept in the database for proofs in O(log n) lookups (SPEC §9).

Level 0 of the tree, the leaf hashes, is ``audit_events.leaf_hash``: the leaf of event ``seq`` has index
``seq - 1``, so the 64 leaves of block ``b`` are events ``64 b + 1 .. 64 b + 64``, read by primary key. An
append writes no more than its rows, their leaf hashes and (a bulk append) the root of each block of 64 leaves
it fills whole (``audit_block_roots``, node ``(6, b)``): the tree is extended only when a checkpoint is made,
from the previous checkpoint's size to the new one, from those roots (hashing a block's leaves only where no
root was written) and the perfect subtrees they complete. ``audit_tree_blocks`` then holds the perfect subtrees
of every ``STEP``-th level above the leaves at the latest checkpoint (levels 6, 12, ...), in blocks of
``BLOCK`` = 2**STEP consecutive hashes of one level: a row per node would cost a checkpoint about as much as
the appends it covers. A block of level ``L`` is one perfect subtree of level ``L + STEP``, so each node of the
five levels between two stored ones is hashed again, when a proof needs it, from at most 32 hashes of one
stored block (or 32 leaves): a checkpoint writes about 1/4096 of a row per event, a proof reads O(log n) blocks
and at most two blocks of leaves, and ``bwc audit verify`` recomputes everything from the events. Node
``(level, idx)`` is hashed from ``2**j`` hashes (``j = level % STEP``) from byte ``32 * ((idx << j) % BLOCK)``
on of block ``(level - j, (idx << j) // BLOCK)`` (:func:`block_of`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from sqlalchemy.orm import Session

from audit import merkle
from audit.merkle import HASH_SIZE, Node
from config.errors import BwcError
from storage.bulk import insert_rows, table_of
from storage.models import TREE_BLOCK, TREE_STEP, AuditTreeBlock
from storage.tree_hashes import parents, subtree_roots

STEP = TREE_STEP  # every STEP-th level is stored
BLOCK = TREE_BLOCK  # hashes per block: a block of a stored level is one node of the next stored level
LOOKUP_BATCH = 500  # blocks per query: well under every driver's parameter limit
MAX_LEVELS = 62  # levels of a tree of up to 2**62 leaves (seq is a signed 64-bit integer)


class TreeIncomplete(BwcError):
    """The stored tree lacks a node it should hold, or the events have a hole: no proof can be made."""

    code = "audit_tree_incomplete"
    status = 500


def raw_rows(
    session: Session, sql: str, params: tuple[int, ...] = (), binary: bool = False
) -> list[tuple[object, ...]]:
    """Rows straight from the driver in the session's transaction (``?`` placeholders on both databases).

    For the hot paths only: SQLAlchemy's per-row result processing costs more than the work on each row.
    ``binary``: PostgreSQL sends the values in their binary form (bytea as its bytes, not as hex text).
    """
    conn = session.connection()
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if conn.dialect.name == "postgresql":
            cursor.execute(sql.replace("?", "%s"), params, binary=binary)  # type: ignore[call-arg]
        else:
            cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


BLOCK_COLUMNS = ("level", "block", "hashes")
BLOCK_PG_TYPES = ("int2", "int8", "bytea")


def fetch_blocks(session: Session, keys: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The blocks ``(level, block)`` asked for: level 0 from the events' leaf hashes (:func:`leaf_blocks`),
    the others as stored; missing ones are absent.

    One statement per batch, ``level = l AND block IN (...)`` per level joined by OR: both databases answer
    that from the primary key (SQLite would scan the table for a row-value ``IN``). The keys are integers,
    written into the SQL as such.
    """
    wanted = sorted({(int(level), int(block)) for level, block in keys})
    found = leaf_blocks(session, [block for level, block in wanted if level == 0])
    wanted = [key for key in wanted if key[0]]
    for i in range(0, len(wanted), LOOKUP_BATCH):
        by_level: dict[int, list[str]] = {}
        for level, block in wanted[i : i + LOOKUP_BATCH]:
            by_level.setdefault(level, []).append(str(block))
        where = " OR ".join(f"(level = {lv} AND block IN ({','.join(bs)}))" for lv, bs in by_level.items())
        sql = f"SELECT level, block, hashes FROM audit_tree_blocks WHERE {where}"
        for row_level, row_block, data in raw_rows(session, sql, binary=True):
            found[(int(row_level), int(row_block))] = bytes(data)  # type: ignore[call-overload]
    return found


def leaf_blocks(session: Session, numbers: Iterable[int]) -> dict[tuple[int, int], bytes]:
    """Level-0 blocks ``(0, b)``: the recorded leaf hashes of events ``64 b + 1 ..`` (:func:`blocks_of_leaves`).

    For a proof's few blocks: a row per event. A checkpoint reads many more through
    :func:`_recorded_leaves`, one string per range.
    """
    wanted = sorted({int(b) for b in numbers})
    found: dict[tuple[int, int], bytes] = {}
    for i in range(0, len(wanted), LOOKUP_BATCH):
        where = " OR ".join(f"(seq > {b * BLOCK} AND seq <= {(b + 1) * BLOCK})" for b in wanted[i : i + LOOKUP_BATCH])
        found |= blocks_of_leaves(raw_rows(session, f"SELECT seq, leaf_hash FROM audit_events WHERE {where}"))
    return found


def blocks_of_leaves(rows: Iterable[Sequence[object]]) -> dict[tuple[int, int], bytes]:
    """Level-0 blocks ``(0, b)`` from ``(seq, leaf_hash)`` rows in any order: each block's hashes joined from
    its first leaf, cut short at the first missing event or damaged hash (so that no hash is ever taken for
    another index's, and a proof that needs it fails as :class:`TreeIncomplete`)."""
    by_seq: dict[int, object] = {int(seq): text for seq, text in rows}  # type: ignore[call-overload]
    found: dict[tuple[int, int], bytes] = {}
    for number in {(seq - 1) // BLOCK for seq in by_seq}:
        hashes = []
        for seq in range(number * BLOCK + 1, (number + 1) * BLOCK + 1):
            text = by_seq.get(seq)
            if not isinstance(text, str) or len(text) != 2 * HASH_SIZE:
                break
            try:
                hashes.append(bytes.fromhex(text))
            except ValueError:  # not hex
                break
        found[(0, number)] = b"".join(hashes)
    return found


def stored(level: int) -> bool:
    """Whether the blocks of ``level`` are stored (every STEP-th level, from the leaves)."""
    return level % STEP == 0


def block_of(node: Node) -> tuple[int, int]:
    """The stored block ``(level, block)`` that node ``(level, idx)`` is, or is hashed from."""
    level, idx = node
    j = level % STEP
    return level - j, (idx << j) // BLOCK


def nodes_of_blocks(blocks: Mapping[tuple[int, int], bytes], keys: Iterable[Node]) -> dict[Node, bytes]:
    """The hashes of the given perfect subtrees from ``blocks`` (absent when their block lacks a hash)."""
    found: dict[Node, bytes] = {}
    for level, idx in keys:
        j = level % STEP
        first = (idx << j) % BLOCK
        data = blocks.get(block_of((level, idx)), b"")[HASH_SIZE * first : HASH_SIZE * (first + (1 << j))]
        if len(data) == HASH_SIZE << j:
            found[(level, idx)] = subtree_roots(data, j)
    return found


def fetch_nodes(session: Session, keys: Iterable[Node]) -> dict[Node, bytes]:
    """The hashes of the given perfect subtrees, from the stored blocks (missing ones are absent)."""
    keys = list(keys)
    return nodes_of_blocks(fetch_blocks(session, {block_of(node) for node in keys}), keys)


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
    keys = {block_of(node) for node in merkle.nodes_for(ranges)}
    return proof_from_blocks(ranges, fetch_blocks(session, keys))


def inclusion_blocks(index: int) -> list[int]:
    """Per level from 0, the block of that level's stored level holding the sibling subtree of leaf ``index``
    (for every level of a group of STEP, the block of the leaf's own ancestor: a sibling lies in it).

    An inclusion proof's other nodes are each the last node of a level at the tree's size (its right
    edge), so in the block :func:`block_of` names for it: with these, one read serves a proof before the
    size is known.
    """
    return [(index >> (level - level % STEP)) // BLOCK for level in range(MAX_LEVELS)]


def root(session: Session, size: int) -> bytes:
    """The root of the tree of the first ``size`` events, from the stored nodes."""
    return proof(session, [(0, size)])[0] if size else merkle.EMPTY_ROOT


def _stored_roots(session: Session, first: int, end: int) -> dict[int, bytes]:
    """The block roots the bulk appends wrote for leaf blocks ``first .. end-1``."""
    sql = "SELECT block, root FROM audit_block_roots WHERE block >= ? AND block < ?"
    rows = raw_rows(session, sql, (first, end), binary=True) if end > first else []
    return {int(block): bytes(root) for block, root in rows}  # type: ignore[call-overload]


def _sixth_level(
    session: Session, blocks: dict[tuple[int, int], bytes], old_size: int, new_size: int, leaves_of: set[int]
) -> bytes:
    """The nodes ``(6, old_size >> 6 .. (new_size >> 6) - 1)``, the roots of the leaf blocks the new events
    complete, joined; and into ``blocks`` the level-0 blocks ``leaves_of`` (those holding nodes of the
    levels below 6 that the new root and the consistency proof need), read from the events.

    Each root is the one a bulk append wrote when it appended all 64 leaves (the usual case: a checkpoint
    then reads 32 bytes per 64 events) and otherwise hashed here from the events' recorded leaf hashes, read
    in one statement per batch of ranges (a single-event append, a block two transactions share, the log
    before the appenders wrote roots). The same statement counts the events of the whole range: seq is the
    primary key, so as many rows as the range is long means none is missing, under a stored root too.
    """
    first, end = old_size // BLOCK, new_size // BLOCK
    roots = _stored_roots(session, first, end)
    for number, data in roots.items():
        if len(data) != HASH_SIZE:
            raise TreeIncomplete(f"the stored root of leaf block {number} is damaged")
    unrooted = [number for number in range(first, end) if number not in roots]
    ranges: list[tuple[int, int]] = []
    for number in sorted(leaves_of.union(unrooted)):
        lo, hi = number * BLOCK, min((number + 1) * BLOCK, new_size)
        if ranges and ranges[-1][1] == lo:
            ranges[-1] = (ranges[-1][0], hi)
        else:
            ranges.append((lo, hi))
    for (lo, hi), data in _recorded_leaves(session, old_size, new_size, ranges).items():
        for number in range(lo // BLOCK, -(-hi // BLOCK)):
            blocks[(0, number)] = data[HASH_SIZE * (number * BLOCK - lo) : HASH_SIZE * ((number + 1) * BLOCK - lo)]
    hashed = subtree_roots(b"".join([blocks[(0, number)] for number in unrooted]), STEP)
    made = {number: hashed[HASH_SIZE * i : HASH_SIZE * (i + 1)] for i, number in enumerate(unrooted)}
    return b"".join([roots[number] if number in roots else made[number] for number in range(first, end)])


RANGES_BATCH = 200  # leaf ranges per statement: two parameters each, well under every driver's limit


def _recorded_leaves(
    session: Session, old_size: int, new_size: int, ranges: list[tuple[int, int]]
) -> dict[tuple[int, int], bytes]:
    """The recorded leaf hashes of each range ``[a, b)`` of leaf indices, joined in seq order; and the check
    that events ``old_size+1 .. new_size`` have no hole.

    Only the hashes travel, one aggregated string per range (a NULL hash is left out of it, so the length
    check catches it). SQLite (before 3.44) has no ORDER BY in an aggregate; it aggregates in the order of
    the ordered subquery, and one string costs about half of what a Python row per event did.
    """
    if session.get_bind().dialect.name == "postgresql":
        one = "count(*), string_agg(leaf_hash, '' ORDER BY seq) FROM audit_events WHERE seq > ? AND seq <= ?"
    else:
        ordered = "SELECT leaf_hash FROM audit_events WHERE seq > ? AND seq <= ? ORDER BY seq"
        one = f"count(*), group_concat(leaf_hash, '') FROM ({ordered})"
    found: dict[int, object] = {}
    batches = [ranges[i : i + RANGES_BATCH] for i in range(0, len(ranges), RANGES_BATCH)] or [[]]
    for n, batch in enumerate(batches):
        # the range's number written into the SQL (an integer): the answer's rows come in no promised order
        selects = ["SELECT -1, count(*), NULL FROM audit_events WHERE seq > ? AND seq <= ?"] if n == 0 else []
        params: list[int] = [old_size, new_size] if n == 0 else []
        for i, (a, b) in enumerate(batch, start=n * RANGES_BATCH):
            selects.append(f"SELECT {i}, {one}")
            params += [a, b]
        for number, count, text in raw_rows(session, " UNION ALL ".join(selects), tuple(params)):
            found[int(number)] = count if int(number) < 0 else text  # type: ignore[call-overload]
    if found.get(-1) != new_size - old_size:
        raise TreeIncomplete(f"the audit events {old_size + 1}..{new_size} have a hole: run `bwc audit verify`")
    read: dict[tuple[int, int], bytes] = {}
    for i, (a, b) in enumerate(ranges):
        text = found.get(i)
        try:
            data = bytes.fromhex(text) if isinstance(text, str) else b""
        except ValueError:  # not hex
            data = b""
        if len(data) != HASH_SIZE * (b - a):
            raise TreeIncomplete(f"the audit events {a + 1}..{b} hold a damaged leaf hash: run `bwc audit verify`")
        read[(a, b)] = data
    return read


def extend(session: Session, old_size: int, new_size: int) -> tuple[bytes, list[bytes]]:
    """Store the nodes the events ``old_size+1 .. new_size`` complete (caller commits); return the new root
    and the consistency proof from ``old_size``, both from the nodes read and made here.

    Work is O(new events / 64 + log n) in five statements whatever the tree's height: read, in one query, the
    block per stored level that the previous checkpoint left short and the blocks of the old nodes the new
    root and the proof need; the block roots the bulk appends wrote; the recorded leaf hashes of the blocks
    without a root and of the (at most two) blocks of leaves whose lower nodes the root and the proof need,
    counting the new events (:func:`_sixth_level`); delete the short blocks and any after them; write them
    anew (completed) with the new blocks. Each level from 6 is one joined string of hashes from the start of
    its stored level's short block: a block is a slice of it, and the levels between two stored ones are
    hashed from there (a few nodes again, at most 63 a level) so that the next stored level gets every new
    node.
    """
    if new_size < old_size:
        raise TreeIncomplete(f"the audit log shrank from {old_size} to {new_size} events: run `bwc audit verify`")
    levels: list[int] = []
    while (new_size >> len(levels)) > (old_size >> len(levels)):
        levels.append(len(levels))
    upper = levels[STEP:]  # the levels from 6 with new nodes; those below are hashed from the leaves
    starts: dict[int, int] = {}  # per level the first node hashed here: a stored level's short block on
    for lv in upper:
        starts[lv] = (old_size >> lv) - (old_size >> lv) % BLOCK if stored(lv) else starts[lv - 1] // 2
    ranges = merkle.consistency_ranges(old_size, new_size)
    wanted = merkle.perfect_nodes(0, new_size) if new_size else []
    wanted += sorted(merkle.nodes_for(ranges))
    low = [(lv, ix) for lv, ix in wanted if lv < STEP]
    old_nodes = [(lv, ix) for lv, ix in wanted if lv >= STEP and (lv not in starts or ix < starts[lv])]
    short = [(lv, starts[lv] // BLOCK) for lv in upper if stored(lv) and starts[lv] < old_size >> lv]
    blocks = fetch_blocks(session, short + [block_of(node) for node in old_nodes])
    current = _sixth_level(session, blocks, old_size, new_size, {block_of(node)[1] for node in low})
    rows: list[tuple[int, int, bytes]] = []
    fresh: dict[int, bytes] = {}
    span = HASH_SIZE * BLOCK
    for level in upper:
        start, old_count, new_count = starts[level], old_size >> level, new_size >> level
        if stored(level):
            if start < old_count:
                data = blocks.get((level, start // BLOCK), b"")
                if len(data) != HASH_SIZE * (old_count - start):
                    raise TreeIncomplete(f"the stored audit tree's block {level}/{start // BLOCK} is damaged")
                current = data + current
            rows.extend(
                (level, start // BLOCK + i // span, current[i : i + span]) for i in range(0, len(current), span)
            )
        fresh[level] = current
        # below a stored level its parents pair up from the first even index of its new nodes (it has the
        # rest); below a level hashed here, all of them from this level's first node
        first = (old_size >> (level + 1)) * 2 - start if stored(level + 1) else 0
        current = parents(current, first, new_count - start)
    # from the short block on. Integers written into the SQL, straight to the driver: the statement's shape
    # changes with the tree's height, so a built statement would be compiled anew at every checkpoint
    where = [f"(level = {lv} AND block >= {starts[lv] // BLOCK})" for lv in upper if stored(lv)]
    if where:
        session.connection().exec_driver_sql(f"DELETE FROM audit_tree_blocks WHERE {' OR '.join(where)}")
        insert_rows(session, table_of(AuditTreeBlock), BLOCK_COLUMNS, rows, BLOCK_PG_TYPES)
    known = nodes_of_blocks(blocks, low + old_nodes)
    for lv, ix in wanted:
        if lv in fresh and ix >= starts[lv]:
            known[(lv, ix)] = fresh[lv][HASH_SIZE * (ix - starts[lv]) : HASH_SIZE * (ix - starts[lv] + 1)]
    if any(len(known.get(node, b"")) != HASH_SIZE for node in wanted):
        raise TreeIncomplete("the stored audit tree lacks nodes of its own root: run `bwc audit verify`")
    root = merkle.root_from_nodes(new_size, known) if new_size else merkle.EMPTY_ROOT
    return root, merkle.proof_from_nodes(ranges, known)
