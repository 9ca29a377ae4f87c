"""RFC 6962 / RFC 9162 Merkle tree hashing and proofs, as pure functions over hashes (SPEC §9).

Decisions:
- Hashes are raw 32-byte SHA-256 digests. A leaf hashes as SHA-256(0x00 ‖ leaf), an interior node as
  SHA-256(0x01 ‖ left ‖ right); the empty tree's hash is SHA-256 of nothing (RFC 9162 §2.1.1).
- The tree over ``n`` leaves is RFC 9162's: the left subtree holds the largest power of two below ``n``.
  Every subtree that appears in a proof is a range ``[start, end)`` whose hash is the right fold of the
  *perfect* (power-of-two, aligned) subtrees that tile it. A perfect subtree is named ``(level, index)``:
  ``2**level`` leaves from ``index * 2**level``. So a store that keeps perfect-subtree hashes answers any
  proof with O(log n) lookups (:func:`inclusion_nodes`, :func:`proof_from_nodes`), and the functions that
  take every leaf hash (:func:`inclusion_proof`, :func:`consistency_proof`) are the same code over a list.
- Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 step by step and raises :class:`MerkleError`.
- A consistency proof from size 0 or from ``m == n`` is empty; it verifies only when it is empty (and,
  for ``m == n``, when the two roots are equal).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence

from config.errors import BwcError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Node = tuple[int, int]  # (level, index): the perfect subtree of 2**level leaves from index * 2**level
Range = tuple[int, int]  # [start, end) leaf indices of one subtree of the RFC 9162 tree


class MerkleError(BwcError):
    """A proof that does not verify, or a request for a proof that cannot exist."""

    code = "merkle_proof_invalid"
    status = 422


def leaf_hash(leaf: bytes) -> bytes:
    """RFC 6962 leaf hash, SHA-256(0x00 ‖ leaf): the prefix keeps leaves and nodes apart."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash, SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two strictly below ``size`` (size ≥ 2): the left subtree's leaf count."""
    return 1 << ((size - 1).bit_length() - 1)


def perfect_nodes(start: int, end: int) -> list[Node]:
    """The perfect subtrees tiling ``[start, end)``, largest first (a range of the RFC 9162 tree)."""
    nodes: list[Node] = []
    pos = start
    while pos < end:
        level = (end - pos).bit_length() - 1
        while pos % (1 << level):
            level -= 1
        nodes.append((level, pos >> level))
        pos += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """The hash of a range from its perfect subtrees' hashes, largest first (a right fold)."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def tree_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) from all leaf hashes, iteratively: a stack of perfect subtrees (O(n) hashes, O(log n) memory)."""
    stack: list[tuple[int, bytes]] = []  # (level, hash), levels strictly decreasing
    for h in leaf_hashes:
        level, acc = 0, h
        while stack and stack[-1][0] == level:
            acc = node_hash(stack.pop()[1], acc)
            level += 1
        stack.append((level, acc))
    return fold([h for _, h in stack])


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees whose hashes make the inclusion proof of leaf ``index`` in a tree of ``size``, leaf first."""
    if not 0 <= index < size:
        raise MerkleError(f"leaf index {index} is not in a tree of size {size}")
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:  # RFC 9162 §2.1.3.1 PATH(m, D[n]), unrolled from the root down
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    return ranges[::-1]


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """The subtrees whose hashes make the consistency proof from ``old_size`` to ``new_size``."""
    if not 0 <= old_size <= new_size:
        raise MerkleError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    ranges: list[Range] = []
    start, end, m, complete = 0, new_size, old_size, True
    while m != end - start:  # RFC 9162 §2.1.4.1 SUBPROOF(m, D[n], b), unrolled
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        ranges.append((start, end))
    return ranges[::-1]


def nodes_for(ranges: Sequence[Range]) -> set[Node]:
    """Every perfect subtree needed to hash the given ranges: what a node store must look up."""
    return {node for start, end in ranges for node in perfect_nodes(start, end)}


def proof_from_nodes(ranges: Sequence[Range], nodes: Mapping[Node, bytes] | Callable[[Node], bytes]) -> list[bytes]:
    """The proof hashes for ``ranges`` from perfect-subtree hashes (a mapping or a lookup function)."""
    get = nodes.__getitem__ if isinstance(nodes, Mapping) else nodes
    return [fold([get(node) for node in perfect_nodes(start, end)]) for start, end in ranges]


def root_from_nodes(size: int, nodes: Mapping[Node, bytes] | Callable[[Node], bytes]) -> bytes:
    """The root of a tree of ``size`` leaves from the perfect subtrees of its binary decomposition."""
    return proof_from_nodes([(0, size)], nodes)[0]


def _leaf_nodes(leaf_hashes: Sequence[bytes]) -> Callable[[Node], bytes]:
    def get(node: Node) -> bytes:
        level, index = node
        return tree_hash(leaf_hashes[index << level : (index + 1) << level])

    return get


def inclusion_proof(index: int, size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The inclusion proof of leaf ``index`` in the tree of the first ``size`` of ``leaf_hashes``."""
    if size > len(leaf_hashes):
        raise MerkleError(f"a tree of size {size} needs {size} leaves, got {len(leaf_hashes)}")
    return proof_from_nodes(inclusion_ranges(index, size), _leaf_nodes(leaf_hashes))


def consistency_proof(old_size: int, new_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """The consistency proof between the trees of the first ``old_size`` and ``new_size`` leaf hashes."""
    if new_size > len(leaf_hashes):
        raise MerkleError(f"a tree of size {new_size} needs {new_size} leaves, got {len(leaf_hashes)}")
    return proof_from_nodes(consistency_ranges(old_size, new_size), _leaf_nodes(leaf_hashes))


def _check_hashes(*hashes: bytes) -> None:
    for h in hashes:
        if len(h) != HASH_SIZE:
            raise MerkleError(f"a hash must be {HASH_SIZE} bytes, got {len(h)}")


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` implies for leaf hash ``leaf`` at ``index`` (RFC 9162 §2.1.3.2 steps 1-4)."""
    _check_hashes(leaf, *proof)
    if not 0 <= index < size:
        raise MerkleError(f"leaf index {index} is not in a tree of size {size}")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise MerkleError("inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise MerkleError("inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Raise :class:`MerkleError` unless ``proof`` shows leaf hash ``leaf`` at ``index`` under ``root``."""
    _check_hashes(root)
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise MerkleError(f"inclusion proof for leaf {index} does not lead to the root of size {size}")


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> None:
    """Raise :class:`MerkleError` unless ``proof`` shows the tree ``old_root`` is a prefix of ``new_root``."""
    _check_hashes(old_root, new_root, *proof)
    if not 0 <= old_size <= new_size:
        raise MerkleError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size == 0 or old_size == new_size:
        if proof:
            raise MerkleError("a consistency proof from an empty or equal tree must be empty")
        if old_size == new_size and old_root != new_root:
            raise MerkleError(f"two different roots for the same size {new_size}")
        return
    if not proof:
        raise MerkleError("empty consistency proof")
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # an exact power of two: the old root is itself a node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise MerkleError("consistency proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != old_root or sr != new_root:
        raise MerkleError(f"consistency proof from size {old_size} to size {new_size} does not verify")
