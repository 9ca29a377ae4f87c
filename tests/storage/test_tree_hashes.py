"""The C extension of the tree's hash loops gives the Python functions' bytes and refuses what they refuse."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit import merkle
from storage import tree_hashes
from storage.tree_hashes import HASH_SIZE, py_leaf_hashes, py_parents, py_subtree_roots
from tests.audit.test_merkle import CT_LEAVES, CT_ROOTS


def _native() -> ModuleType:
    """The built extension; under CI=true its absence fails (CI must not silently test only the fallback)."""
    try:
        from storage import _merkle_native
    except ImportError as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"storage._merkle_native is not built under CI=true: {e}")
        pytest.skip("storage._merkle_native is not built (no compiler or OpenSSL headers): only the fallback runs")
    return _merkle_native


def _hashes(count: int) -> bytes:
    return b"".join(hashlib.sha256(b"\x00" + n.to_bytes(4, "big")).digest() for n in range(count))


# leaf counts with 0, 1, powers of two and odd sizes well represented
COUNTS = st.one_of(st.sampled_from([0, 1, 2, 3, 63, 64, 65, 127, 128, 129, 256, 4096]), st.integers(0, 700))


def test_the_picking_module_uses_the_native_functions_when_built() -> None:
    native = _native()
    assert tree_hashes.NATIVE
    assert tree_hashes.parents is native.parents
    assert tree_hashes.subtree_roots is native.subtree_roots
    assert tree_hashes.leaf_hashes is native.leaf_hashes


@given(count=COUNTS, levels=st.integers(0, 12))
def test_subtree_roots_are_the_same_bytes(count: int, levels: int) -> None:
    native, data = _native(), _hashes(count)
    assert native.subtree_roots(data, levels) == py_subtree_roots(data, levels)
    assert len(py_subtree_roots(data, levels)) == HASH_SIZE * (count >> levels)


@given(count=COUNTS, data=st.data())
def test_parents_are_the_same_bytes(count: int, data: st.DataObject) -> None:
    native, level = _native(), _hashes(count)
    end = data.draw(st.integers(0, count))
    first = data.draw(st.integers(0, end))
    want = py_parents(level, first, end)
    assert native.parents(level, first, end) == want
    assert len(want) == HASH_SIZE * ((end - first) // 2)


@given(leaves=st.lists(st.binary(max_size=300), max_size=80))
def test_leaf_hashes_are_the_same_bytes(leaves: list[bytes]) -> None:
    want = b"".join(merkle.leaf_hash(leaf) for leaf in leaves)
    assert py_leaf_hashes(leaves) == want
    assert _native().leaf_hashes(leaves) == want
    assert _native().leaf_hashes(tuple(bytearray(leaf) for leaf in leaves)) == want


@pytest.mark.parametrize("impl", ["python", "native"])
def test_the_rfc_6962_vectors(impl: str) -> None:
    leaf_hashes, parents, subtree_roots = _impl(impl)
    hashes = leaf_hashes(CT_LEAVES)
    assert hashes == b"".join(merkle.leaf_hash(leaf) for leaf in CT_LEAVES)
    for levels in range(4):  # the perfect trees of the vectors: sizes 1, 2, 4, 8
        assert subtree_roots(hashes[: HASH_SIZE << levels], levels).hex() == CT_ROOTS[1 << levels]
    level = hashes
    while len(level) > HASH_SIZE:  # the root of 8 a level at a time
        level = parents(level, 0, len(level) // HASH_SIZE)
    assert level.hex() == CT_ROOTS[8]
    # an odd last node waits for its pair: the 7 leaves' first level is the 3 pairs
    assert parents(hashes[: 7 * HASH_SIZE], 0, 7) == parents(hashes[: 6 * HASH_SIZE], 0, 6)


def _impl(name: str) -> tuple[Callable[..., bytes], Callable[..., bytes], Callable[..., bytes]]:
    if name == "python":
        return py_leaf_hashes, py_parents, py_subtree_roots
    native = _native()
    return native.leaf_hashes, native.parents, native.subtree_roots


BAD: list[tuple[str, tuple[Any, ...], type[Exception]]] = [
    ("parents", (b"\x00" * 63, 0, 1), ValueError),  # not whole hashes
    ("parents", (b"\x00" * 64, 0, 3), ValueError),  # beyond the level
    ("parents", (b"\x00" * 64, -2, 2), ValueError),
    ("parents", (b"\x00" * 64, 2, 0), ValueError),
    ("parents", ("0" * 64, 0, 0), TypeError),
    ("parents", (None, 0, 0), TypeError),
    ("parents", (b"\x00" * 64, "0", 2), TypeError),
    ("subtree_roots", (b"\x00" * 33, 1), ValueError),
    ("subtree_roots", (b"\x00" * 64, -1), ValueError),
    ("subtree_roots", ("0" * 64, 1), TypeError),
    ("subtree_roots", ([b"\x00" * 32, b"\x00" * 32], 1), TypeError),
    ("subtree_roots", (b"\x00" * 64, None), TypeError),
    ("leaf_hashes", ([b"a", "b"],), TypeError),
    ("leaf_hashes", ([b"a", None],), TypeError),
    ("leaf_hashes", (b"ab",), TypeError),
    ("leaf_hashes", (iter([b"a"]),), TypeError),
]


@pytest.mark.parametrize("impl", ["python", "native"])
@pytest.mark.parametrize(("name", "args", "error"), BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_bad_input_is_a_clear_error(impl: str, name: str, args: tuple[Any, ...], error: type[Exception]) -> None:
    leaf_hashes, parents, subtree_roots = _impl(impl)
    function = {"leaf_hashes": leaf_hashes, "parents": parents, "subtree_roots": subtree_roots}[name]
    with pytest.raises(error):
        function(*args)


@pytest.mark.parametrize("impl", ["python", "native"])
def test_huge_levels_give_no_roots_and_zero_levels_the_data(impl: str) -> None:
    _, _, subtree_roots = _impl(impl)
    data = _hashes(5)
    assert subtree_roots(data, 10**6) == b""
    assert subtree_roots(memoryview(data), 0) == data
    assert subtree_roots(b"", 3) == b""
