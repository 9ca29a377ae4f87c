"""The Merkle functions against RFC 6962 vectors and an independent RFC 9162 implementation written out here."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit import merkle
from audit.merkle import MerkleError

# --- RFC 9162 §2.1, written out recursively as the RFC states it (independent of audit.merkle) ---------


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    """MTH(D[n]) over the leaves themselves (not their hashes)."""
    if not d:
        return _h(b"")
    if len(d) == 1:
        return _h(b"\x00" + d[0])
    k = _k(len(d))
    return _h(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:]))


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]), RFC 9162 §2.1.3.1."""
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    """SUBPROOF(m, D[n], b), RFC 9162 §2.1.4.1."""
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = _k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_root_from_path(m: int, n: int, leaf_hash: bytes, path: list[bytes]) -> bytes:
    """The root a PATH implies, by undoing the recursion (a second, recursive verifier)."""
    if n == 1:
        assert not path
        return leaf_hash
    k = _k(n)
    if m < k:
        return _h(b"\x01" + ref_root_from_path(m, k, leaf_hash, path[:-1]) + path[-1])
    return _h(b"\x01" + path[-1] + ref_root_from_path(m - k, n - k, leaf_hash, path[:-1]))


def ref_roots_from_subproof(m: int, n: int, b: bool, old_root: bytes, proof: list[bytes]) -> tuple[bytes, bytes]:
    """The (old, new) roots a SUBPROOF implies, by undoing the recursion."""
    if m == n:
        if b:
            assert not proof
            return old_root, old_root
        assert len(proof) == 1
        return proof[0], proof[0]
    k = _k(n)
    if m <= k:
        old, new = ref_roots_from_subproof(m, k, b, old_root, proof[:-1])
        return old, _h(b"\x01" + new + proof[-1])
    old, new = ref_roots_from_subproof(m - k, n - k, False, old_root, proof[:-1])
    return _h(b"\x01" + proof[-1] + old), _h(b"\x01" + proof[-1] + new)


def _leaves(n: int) -> list[bytes]:
    return [f"leaf {i}".encode() for i in range(n)]


# --- RFC 6962 vectors (the Certificate Transparency reference tree, as published with CT's code) --------

CT_LEAVES = [bytes.fromhex(h) for h in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657"]] + [
    bytes.fromhex("606162636465666768696a6b6c6d6e6f")
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_INCLUSION = {
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
}
CT_CONSISTENCY = {
    (2, 8): [
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
}


def test_roots_match_the_rfc_6962_vectors() -> None:
    hashes = [merkle.leaf_hash(leaf) for leaf in CT_LEAVES]
    for size, want in enumerate(CT_ROOTS):
        assert merkle.tree_hash(hashes[:size]).hex() == want
        assert ref_mth(CT_LEAVES[:size]).hex() == want


def test_proofs_match_the_rfc_6962_vectors() -> None:
    hashes = [merkle.leaf_hash(leaf) for leaf in CT_LEAVES]
    root = bytes.fromhex(CT_ROOTS[8])
    for (index, size), want in CT_INCLUSION.items():
        proof = merkle.inclusion_proof(index, size, hashes)
        assert [p.hex() for p in proof] == want
        merkle.verify_inclusion(index, size, hashes[index], proof, root)
    for (old, new), want in CT_CONSISTENCY.items():
        proof = merkle.consistency_proof(old, new, hashes)
        assert [p.hex() for p in proof] == want
        merkle.verify_consistency(old, new, bytes.fromhex(CT_ROOTS[old]), root, proof)


def test_every_proof_equals_the_rfc_definition_up_to_40_leaves() -> None:
    data = _leaves(40)
    hashes = [merkle.leaf_hash(x) for x in data]
    for n in range(1, 41):
        assert merkle.tree_hash(hashes[:n]) == ref_mth(data[:n])
        for m in range(n):
            assert merkle.inclusion_proof(m, n, hashes) == ref_path(m, data[:n])
        for m in range(1, n + 1):
            assert merkle.consistency_proof(m, n, hashes) == ref_subproof(m, data[:n], True)


def test_proofs_from_stored_nodes_equal_proofs_from_leaves() -> None:
    hashes = [merkle.leaf_hash(x) for x in _leaves(37)]
    nodes = {
        (level, i): merkle.tree_hash(hashes[i << level : (i + 1) << level])
        for level in range(6)
        for i in range(len(hashes) >> level)
    }
    for n in (1, 2, 5, 16, 37):
        assert merkle.root_from_nodes(n, nodes) == merkle.tree_hash(hashes[:n])
        for m in range(n):
            ranges = merkle.inclusion_ranges(m, n)
            wanted = {k: nodes[k] for k in merkle.nodes_for(ranges)}
            assert merkle.proof_from_nodes(ranges, wanted) == merkle.inclusion_proof(m, n, hashes)
            ranges = merkle.consistency_ranges(m + 1, n)
            assert merkle.proof_from_nodes(ranges, nodes) == merkle.consistency_proof(m + 1, n, hashes)


sizes = st.integers(min_value=1, max_value=300)


@given(st.data(), sizes)
def test_every_inclusion_proof_verifies_both_ways(data: st.DataObject, n: int) -> None:
    leaves = _leaves(n)
    hashes = [merkle.leaf_hash(x) for x in leaves]
    m = data.draw(st.integers(min_value=0, max_value=n - 1))
    root = merkle.tree_hash(hashes)
    proof = merkle.inclusion_proof(m, n, hashes)
    merkle.verify_inclusion(m, n, hashes[m], proof, root)
    assert ref_root_from_path(m, n, hashes[m], proof) == root


@given(st.data(), sizes)
def test_every_consistency_proof_verifies_both_ways(data: st.DataObject, n: int) -> None:
    hashes = [merkle.leaf_hash(x) for x in _leaves(n)]
    m = data.draw(st.integers(min_value=1, max_value=n))
    old, new = merkle.tree_hash(hashes[:m]), merkle.tree_hash(hashes)
    proof = merkle.consistency_proof(m, n, hashes)
    merkle.verify_consistency(m, n, old, new, proof)
    assert ref_roots_from_subproof(m, n, True, old, proof) == (old, new)


def _flip(proof: list[bytes], i: int, bit: int) -> list[bytes]:
    tampered = list(proof)
    tampered[i] = bytes([tampered[i][0] ^ (1 << bit)]) + tampered[i][1:]
    return tampered


@given(st.data(), st.integers(min_value=2, max_value=300))
def test_every_tampered_inclusion_proof_fails(data: st.DataObject, n: int) -> None:
    hashes = [merkle.leaf_hash(x) for x in _leaves(n)]
    m = data.draw(st.integers(min_value=0, max_value=n - 1))
    root = merkle.tree_hash(hashes)
    proof = merkle.inclusion_proof(m, n, hashes)
    i = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
    other = data.draw(st.integers(min_value=0, max_value=n - 1).filter(lambda x: x != m))

    # A size whose path turns left and right at the same heights gives the same root (RFC 9162 binds the size
    # only through the signed checkpoint), so the wrong size is one whose path turns differently.
    def turns(size: int) -> list[bool]:
        return [s < m for s, _ in merkle.inclusion_ranges(m, size)]

    wrong_size = data.draw(st.integers(min_value=m + 1, max_value=2 * n).filter(lambda x: turns(x) != turns(n)))
    bad: list[tuple[int, int, bytes, list[bytes], bytes]] = [
        (m, n, hashes[m], _flip(proof, i, data.draw(st.integers(0, 7))), root),  # a flipped proof element
        (other, n, hashes[m], proof, root),  # wrong index
        (m, wrong_size, hashes[m], proof, root),  # wrong size
        (m, n, hashes[other], proof, root),  # wrong leaf
        (m, n, hashes[m], proof[:-1], root),  # a hash left out
        (m, n, hashes[m], [*proof, proof[-1]], root),  # a hash too many
        (m, n, hashes[m], proof, merkle.tree_hash(hashes[:-1])),  # another tree's root
    ]
    for index, size, leaf, path, r in bad:
        with pytest.raises(MerkleError):
            merkle.verify_inclusion(index, size, leaf, path, r)


@given(st.data(), st.integers(min_value=2, max_value=300))
def test_every_tampered_consistency_proof_fails(data: st.DataObject, n: int) -> None:
    hashes = [merkle.leaf_hash(x) for x in _leaves(n)]
    m = data.draw(st.integers(min_value=1, max_value=n - 1))
    old, new = merkle.tree_hash(hashes[:m]), merkle.tree_hash(hashes)
    proof = merkle.consistency_proof(m, n, hashes)
    i = data.draw(st.integers(min_value=0, max_value=len(proof) - 1))
    other_m = data.draw(st.integers(min_value=1, max_value=n - 1).filter(lambda x: x != m))

    def turns(new_size: int) -> list[tuple[bool, bool]]:  # as for inclusion: sizes the proof cannot tell apart
        return [(s < m, e <= m) for s, e in merkle.consistency_ranges(m, new_size)]

    wrong_n = data.draw(st.integers(min_value=m + 1, max_value=2 * n).filter(lambda x: turns(x) != turns(n)))
    forged = list(hashes)
    forged[m - 1] = merkle.leaf_hash(b"rewritten")
    bad: list[tuple[int, int, bytes, bytes, list[bytes]]] = [
        (m, n, old, new, _flip(proof, i, data.draw(st.integers(0, 7)))),
        (other_m, n, old, new, proof),  # wrong old size
        (m, wrong_n, old, new, proof),  # wrong new size
        (m, n, merkle.tree_hash(forged[:m]), new, proof),  # history rewritten before the old checkpoint
        (m, n, old, merkle.tree_hash(forged), proof),
        (m, n, old, new, proof[:-1]),
        (m, n, old, new, [*proof, proof[0]]),
    ]
    for old_size, new_size, r1, r2, path in bad:
        with pytest.raises(MerkleError):
            merkle.verify_consistency(old_size, new_size, r1, r2, path)


def test_impossible_requests_are_refused() -> None:
    hashes = [merkle.leaf_hash(x) for x in _leaves(4)]
    root = merkle.tree_hash(hashes)
    with pytest.raises(MerkleError, match="not in a tree"):
        merkle.inclusion_proof(4, 4, hashes)
    with pytest.raises(MerkleError, match="needs 5 leaves"):
        merkle.inclusion_proof(0, 5, hashes)
    with pytest.raises(MerkleError, match="no consistency proof"):
        merkle.consistency_proof(3, 2, hashes)
    with pytest.raises(MerkleError, match="32 bytes"):
        merkle.verify_inclusion(0, 4, hashes[0][:31], merkle.inclusion_proof(0, 4, hashes), root)
    with pytest.raises(MerkleError, match="same size"):
        merkle.verify_consistency(4, 4, root, hashes[0], [])
    merkle.verify_consistency(4, 4, root, root, [])
    merkle.verify_consistency(0, 4, merkle.EMPTY_ROOT, root, [])
    with pytest.raises(MerkleError, match="must be empty"):
        merkle.verify_consistency(0, 4, merkle.EMPTY_ROOT, root, [root])
    assert merkle.perfect_nodes(0, 13) == [(3, 0), (2, 2), (0, 12)]
