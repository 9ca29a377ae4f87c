"""The tree's hash loops, C extension against the Python fallback (not a test): CPU per event, and leaks.

Per event, the block roots of a bulk append (63 node hashes every 64 leaf hashes, ``subtree_roots(data, 6)``),
a checkpoint level (``parents``) and the leaf hashes of a batch (``leaf_hashes`` of 200-byte leaves), each
timed with ``time.process_time`` over ``--events`` hashes, Python and native alternated ``--rounds`` times; the
best round of each is printed (the machine is shared: the best is the least disturbed). Then ``--leak-loops``
calls of each native function, good and bad inputs alike, with the RSS and tracemalloc's count before and after:
a reference or buffer the C code forgot to release grows both with the loops.

    .venv/bin/python -m bench.tree_hashes [--events 65536] [--rounds 15] [--leak-loops 200000]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import psutil

from storage import tree_hashes
from storage.tree_hashes import HASH_SIZE, py_leaf_hashes, py_parents, py_subtree_roots


def _cpu_ns(f: Callable[[], object], events: int) -> float:
    start = time.process_time()
    f()
    return (time.process_time() - start) / events * 1e9


def micro(events: int, rounds: int) -> None:
    """Best-of-rounds CPU per event of each loop, Python and native alternated."""
    from storage import _merkle_native as native

    data, leaves = os.urandom(HASH_SIZE * events), [os.urandom(200) for _ in range(events)]
    cases: dict[str, tuple[Callable[[], object], Callable[[], object]]] = {
        "block roots (subtree_roots, 6 levels)": (
            lambda: py_subtree_roots(data, 6),
            lambda: native.subtree_roots(data, 6),
        ),
        "one level (parents)": (lambda: py_parents(data, 0, events), lambda: native.parents(data, 0, events)),
        "leaf hashes of 200 bytes": (lambda: py_leaf_hashes(leaves), lambda: native.leaf_hashes(leaves)),
    }
    best = {(name, impl): float("inf") for name in cases for impl in ("python", "native")}
    for _ in range(rounds):
        for name, (python, c) in cases.items():
            best[(name, "python")] = min(best[(name, "python")], _cpu_ns(python, events))
            best[(name, "native")] = min(best[(name, "native")], _cpu_ns(c, events))
    load = os.getloadavg()[0]
    print(f"ns of CPU per event, best of {rounds} alternated rounds over {events} events (load {load:.1f})")
    for name in cases:
        p, n = best[(name, "python")], best[(name, "native")]
        print(f"  {name:40s} python {p:7.1f}  native {n:7.1f}  ({p / n:.1f} x)")


def leaks(loops: int) -> None:
    """RSS and traced allocations before and after many calls, good and bad inputs."""
    from storage import _merkle_native as native

    untyped: Any = native  # the bad inputs are wrong on purpose
    data, leaves = os.urandom(HASH_SIZE * 256), [os.urandom(100) for _ in range(64)]
    bad: list[Callable[[], object]] = [
        lambda: native.parents(data[:-1], 0, 2),
        lambda: native.parents(data, 0, 10**6),
        lambda: untyped.subtree_roots("x" * 64, 1),
        lambda: native.subtree_roots(data, -1),
        lambda: untyped.leaf_hashes([b"a", None]),
        lambda: untyped.leaf_hashes(iter(leaves)),
    ]

    def once() -> None:
        native.subtree_roots(data, 6)
        native.subtree_roots(memoryview(data), 0)
        native.subtree_roots(bytearray(data), 8)
        native.parents(data, 2, 255)
        native.leaf_hashes(leaves)
        native.leaf_hashes(tuple(bytearray(leaf) for leaf in leaves[:4]))
        for f in bad:
            with contextlib.suppress(TypeError, ValueError):
                f()

    for _ in range(1000):
        once()
    gc.collect()
    tracemalloc.start()
    rss0, (traced0, _) = psutil.Process().memory_info().rss, tracemalloc.get_traced_memory()
    for _ in range(loops):
        once()
    gc.collect()
    rss1, (traced1, _) = psutil.Process().memory_info().rss, tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        f"{loops} loops of {6 + len(bad)} calls: RSS {rss0 / 2**20:.1f} -> {rss1 / 2**20:.1f} MiB, "
        f"traced {traced0 / 1024:.1f} -> {traced1 / 1024:.1f} KiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=65536)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--leak-loops", type=int, default=200_000)
    args = parser.parse_args()
    if not tree_hashes.NATIVE:
        raise SystemExit("storage._merkle_native is not built: nothing to compare (make setup builds it)")
    micro(args.events, args.rounds)
    leaks(args.leak_loops)


if __name__ == "__main__":
    main()
