"""The audit tree's SHA-256 loops: node hashes of a level, roots of perfect subtrees, leaf hashes of a batch.

The one place that picks how they run: the C extension ``storage._merkle_native`` when it is built (``make
setup`` builds it; one reused OpenSSL context per call instead of ``hashlib``'s set-up per hash, about four
times less CPU a node hash), else the Python functions below, which define the results and are the fallback
where no compiler or OpenSSL headers were at hand. Both give the same bytes and refuse the same inputs
(``tests/storage/test_tree_hashes.py``); ``NATIVE`` says which one this process uses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from types import ModuleType

HASH_SIZE = 32
Buffer = bytes | bytearray | memoryview


def _whole(data: Buffer, name: str) -> int:
    """The number of hashes ``data`` joins; ValueError if it does not join whole ones (as the C module)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"{name} must be a bytes-like object, not {type(data).__name__}")
    if len(data) % HASH_SIZE:
        raise ValueError(f"{name} must join whole {HASH_SIZE}-byte hashes, got {len(data)} bytes")
    return len(data) // HASH_SIZE


def py_parents(level: Buffer, first: int, end: int) -> bytes:
    """RFC 9162 node hashes of the nodes ``first .. end-1`` of one tree level (positions in the joined
    ``level``; ``first`` even), paired in order and joined; an odd last node waits for its pair.

    The node hash inlined: this loop is most of the tree's hashing (a bulk append's block roots, a
    checkpoint's levels, a proof's nodes between two stored levels).
    """
    nodes = _whole(level, "level")
    if first < 0 or end < first or end > nodes:
        raise ValueError(f"nodes {first} .. {end} are not within a level of {nodes}")
    sha256, pair = hashlib.sha256, 2 * HASH_SIZE
    stop = HASH_SIZE * (end - (end - first) % 2)
    return b"".join([sha256(b"\x01" + level[i : i + pair]).digest() for i in range(HASH_SIZE * first, stop, pair)])


def py_subtree_roots(data: Buffer, levels: int) -> bytes:
    """The roots of the consecutive perfect subtrees of ``2**levels`` hashes each that ``data`` joins, joined
    (a whole level at a time: one tight loop a level, however many subtrees); hashes after the last whole
    subtree are left out.

    The first level pairs slices of ``data`` (:func:`py_parents`); the levels above pair the digests of the
    one below as they come, two at a time from one iterator, with no joined level to slice again.
    """
    count = _whole(data, "data")
    if levels < 0:
        raise ValueError(f"levels must not be negative, got {levels}")
    if levels == 0:
        return bytes(data)
    if count >> levels == 0:
        return b""
    sha256, prefix, pair = hashlib.sha256, b"\x01", 2 * HASH_SIZE
    level = [sha256(prefix + data[i : i + pair]).digest() for i in range(0, len(data) - pair + 1, pair)]
    for _ in range(levels - 1):
        pairs = iter(level)
        level = [sha256(prefix + left + right).digest() for left, right in zip(pairs, pairs, strict=False)]
    return b"".join(level)


def py_leaf_hashes(leaves: Sequence[Buffer]) -> bytes:
    """RFC 6962 leaf hashes (SHA-256 over 0x00 followed by the leaf) of ``leaves``, joined."""
    if not isinstance(leaves, list | tuple):
        raise TypeError("leaves must be a list or tuple of bytes")
    sha256 = hashlib.sha256
    return b"".join([sha256(b"\x00" + leaf).digest() for leaf in leaves])


def _load_native() -> ModuleType | None:
    try:
        from storage import _merkle_native
    except ImportError:  # not built: no compiler or no OpenSSL headers at install time
        return None
    return _merkle_native


_native = _load_native()
NATIVE = _native is not None
parents: Callable[[Buffer, int, int], bytes] = _native.parents if _native else py_parents
subtree_roots: Callable[[Buffer, int], bytes] = _native.subtree_roots if _native else py_subtree_roots
leaf_hashes: Callable[[Sequence[Buffer]], bytes] = _native.leaf_hashes if _native else py_leaf_hashes
