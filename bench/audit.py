"""Audit-log benchmark (not a test): append, checkpoint, verify and prove on SQLite and PostgreSQL, at N and 2N.

At full size (2N) 1,000,000 events. Per backend and size it prints:
- append: events/s through ``append_events`` in transactions of ``--batch`` events, the way bulk writers
  (a coverage recompute) append; and the same through ``append_event``, one event per transaction, the way an
  ingest or a request appends (a sample of ``--singles``);
- the cost the tamper-evident log adds to appending, the target being < 10 %. Its work is in two places: a
  bulk append writes the roots of the 64-leaf blocks its leaves fill (``append_events(tree_blocks=True)``, the
  service's way), and a checkpoint extends the stored tree over the new events and signs. So every batch is
  appended twice, to two databases of the same backend, one after the other (which goes first alternates):
  once the service's way followed by a checkpoint (far more often than once a minute at any real event
  rate), once bare (``tree_blocks=False``: the rows and their leaf hashes only, the append as it was before
  the tree) with no checkpoint. The share printed is (append with blocks + checkpoint − bare append) / bare
  append, all measured in the same run; its two parts (the blocks' share of the append, the checkpoint's)
  are printed too. That checkpoint after every transaction is far more often than the service makes them, so
  a second line gives the share at ``bwc run``'s cadence: every batch is also appended the service's way to a
  third database, checkpointed the way the checkpointer would at the event rate measured there (one whenever
  ``--checkpoint-seconds``, default ``checkpoint_seconds``, of appending have passed since the last one, and
  one at the end), so its per-event work (the levels from 6 over every new root) counts in full and only the
  fixed cost per checkpoint is shared out as the service shares it;
- verify: ``bwc audit verify``'s work over every event, in events/s (target ≥ 100,000/s), with the baseline of
  bare SHA-256 over the same number of leaf-sized inputs on this machine, since the machine's load moves both;
- proofs: ``--proofs`` inclusion proofs of random events against the latest checkpoint, median and p99
  (target < 10 ms at 1M events), each one the complete tlog-proof text an auditor downloads;
and the growth from N to 2N, and the load average. Every time is given as wall time and as CPU time: this
process's, plus on PostgreSQL the CPU time of the client backends of the phase's own database (from
``/proc``, same machine), since on a shared machine the wall time mostly measures the other work. The three
databases of a backend share one PostgreSQL cluster, so before each timed PostgreSQL phase a ``CHECKPOINT``
(untimed) writes out what the phases before left (their dirty pages, the WAL of a checkpoint committed with
``synchronous_commit = off``) and the garbage collector runs, and the databases take turns in all six orders:
no phase pays for another's work (:class:`Meter`). Each backend and size runs ``--repeat`` times (default 2)
on fresh databases, and the lowest and highest share are printed: one run's share moves by several points on
this machine. Writes ``bench/out/audit.json``.

    .venv/bin/python -m bench.audit [--events 1000000] [--backends sqlite,postgresql] [--proofs 1000]
                                    [--no-append-blocks] [--checkpoint-seconds 60] [--repeat 2] [--append-only]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import itertools
import json
import os
import random
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text

from audit import checkpoints, log_verify
from audit.notes import Signer
from bench.coverage import PG_ADMIN, database, drop
from config.settings import Settings
from storage.db import derived_transaction, transaction
from storage.events import append_event, append_events
from storage.migrate import upgrade
from storage.runtime import Runtime, build_runtime

OUT = Path(__file__).resolve().parent / "out"


class Meter:
    """Wall and CPU time summed per phase; CPU is this process's plus the database server's for that phase's
    database only.

    The bench's databases share one PostgreSQL cluster, so a phase is charged the client backends of its own
    database (``pg_stat_activity`` pids → ``/proc/PID/stat``), not those of the others, and each PostgreSQL phase starts
    after a ``CHECKPOINT`` (outside the timing) that writes out the dirty pages and flushes the WAL the previous
    phases left (a checkpoint commits with ``synchronous_commit = off``), so that no phase's wall time pays for
    another's writes.
    """

    def __init__(self, *urls: str) -> None:
        postgres = any(url.startswith("postgresql") for url in urls)
        self.admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT") if postgres else None
        self.wall: defaultdict[str, float] = defaultdict(float)
        self.cpu: defaultdict[str, float] = defaultdict(float)
        self.server: defaultdict[str, float] = defaultdict(float)
        self.gc: defaultdict[str, float] = defaultdict(float)  # of the CPU, the cyclic collector's
        self._running: str | None = None
        self._gc_start = 0.0
        gc.callbacks.append(self._collecting)

    def _collecting(self, stage: str, _info: dict[str, int]) -> None:
        if stage == "start":
            self._gc_start = time.process_time()
        elif self._running is not None:
            self.gc[self._running] += time.process_time() - self._gc_start

    def _backend_ticks(self, database: str | None) -> dict[int, int]:
        """Per backend of ``database``, the CPU ticks it has used so far."""
        if self.admin is None or database is None:
            return {}
        with self.admin.connect() as conn:
            # client backends only: an autovacuum worker of the database is charged to whichever phase it
            # overlaps, and not at all when it starts and ends inside one (its pid is gone by then)
            sql = text("SELECT pid FROM pg_stat_activity WHERE datname = :d AND backend_type = 'client backend'")
            pids = [pid for (pid,) in conn.execute(sql, {"d": database})]
        ticks: dict[int, int] = {}
        for pid in pids:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:  # ended meanwhile, or not on this machine
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            ticks[pid] = int(fields[11]) + int(fields[12])  # utime, stime
        return ticks

    def quiesce(self) -> None:
        """Write out the cluster's dirty pages and flush its WAL, outside every phase's timing."""
        if self.admin is not None:
            with self.admin.connect() as conn:
                conn.execute(text("CHECKPOINT"))

    @contextmanager
    def phase(self, name: str, rt: Runtime | None = None, quiesce: bool = True) -> Iterator[None]:
        """Time ``name``; on PostgreSQL charge it the server CPU of the backends of ``rt``'s database, and
        first (``quiesce``) write out what the phases before left."""
        database = rt.engine.url.database if rt is not None and rt.engine.dialect.name == "postgresql" else None
        if database is not None and quiesce:
            self.quiesce()
        s0 = self._backend_ticks(database)
        gc.collect()  # each phase's own allocations decide when it collects, not the phases' before it
        self._running = name
        c0, w0 = time.process_time(), time.perf_counter()
        yield
        w1, c1 = time.perf_counter(), time.process_time()
        self._running = None
        s1 = self._backend_ticks(database)
        ticks = sum(t - s0.get(pid, 0) for pid, t in s1.items())  # a backend started meanwhile began at 0
        self.server[name] += ticks / os.sysconf("SC_CLK_TCK")
        self.wall[name] += w1 - w0
        self.cpu[name] += c1 - c0

    def total_cpu(self, name: str) -> float:
        return self.cpu[name] + self.server[name]

    def close(self) -> None:
        gc.callbacks.remove(self._collecting)
        if self.admin is not None:
            self.admin.dispose()


def _items(start: int, count: int) -> list[tuple[str, str, dict[str, Any]]]:
    """Events shaped like a recompute's links: a kind, a recording subject, a few details."""
    return [
        ("recording.linked", f"recording:{n}", {"action": f"A{n // 3:07d}", "device": f"DSJ-{n % 300:04d}", "n": n})
        for n in range(start, start + count)
    ]


# every order of the three databases in turn, so that none is always the one after another's writes
ORDERS = list(itertools.permutations(("tree", "bare", "cadence")))


def append_and_checkpoint(
    rt: Runtime, bare: Runtime, cadence: Runtime, m: Meter, signer: Signer, n: int, args: argparse.Namespace
) -> dict[str, float]:
    """Each batch appended the service's way and checkpointed in ``rt``, bare in ``bare``, and the service's way
    in ``cadence`` with a checkpoint per ``args.checkpoint_seconds`` of its appending; timed apart (which goes
    first rotates). ``--no-append-blocks``: the appends in ``rt`` and ``cadence`` write no blocks either, the
    checkpoints do all the tree's work."""
    blocks, batch = not args.no_append_blocks, args.batch
    since_checkpoint, cadence_checkpoints = 0.0, 0
    for number, start in enumerate(range(0, n, batch)):
        items = _items(start, min(batch, n - start))
        for which in ORDERS[number % len(ORDERS)]:
            if which == "bare":
                with m.phase("bare_append", bare), transaction(bare.sessions) as s:
                    append_events(s, items, tree_blocks=False)
            elif which == "tree":
                with m.phase("append", rt), transaction(rt.sessions) as s:
                    append_events(s, items, tree_blocks=blocks)
                with m.phase("checkpoint", rt), derived_transaction(rt.sessions) as s:  # as the service's checkpointer
                    checkpoints.make_checkpoint(s, signer)
            else:
                wall = m.wall["cadence_append"]
                with m.phase("cadence_append", cadence), transaction(cadence.sessions) as s:
                    append_events(s, items, tree_blocks=blocks)
                since_checkpoint += m.wall["cadence_append"] - wall
                if since_checkpoint >= args.checkpoint_seconds or start + batch >= n:  # the last one at the end
                    with m.phase("cadence_checkpoint", cadence), derived_transaction(cadence.sessions) as s:
                        checkpoints.make_checkpoint(s, signer)
                    since_checkpoint, cadence_checkpoints = 0.0, cadence_checkpoints + 1
    added = m.wall["append"] + m.wall["checkpoint"] - m.wall["bare_append"]
    added_cpu = m.total_cpu("append") + m.total_cpu("checkpoint") - m.total_cpu("bare_append")
    cadence_wall = m.wall["cadence_append"] + m.wall["cadence_checkpoint"]
    cadence_cpu = m.total_cpu("cadence_append") + m.total_cpu("cadence_checkpoint")
    return {
        "append_per_s": n / m.wall["bare_append"],
        "append_cpu_s": m.cpu["bare_append"],
        "append_server_cpu_s": m.server["bare_append"],
        "append_with_blocks_per_s": n / m.wall["append"],
        "append_with_blocks_cpu_s": m.cpu["append"],
        "append_gc_s": m.gc["bare_append"],
        "append_with_blocks_gc_s": m.gc["append"],
        "cadence_append_gc_s": m.gc["cadence_append"],
        "append_with_blocks_server_cpu_s": m.server["append"],
        "cadence_append_cpu_s": m.cpu["cadence_append"],
        "cadence_append_server_cpu_s": m.server["cadence_append"],
        "cadence_checkpoint_cpu_s": m.cpu["cadence_checkpoint"],
        "cadence_checkpoint_server_cpu_s": m.server["cadence_checkpoint"],
        "checkpoint_s": m.wall["checkpoint"],
        "checkpoint_cpu_s": m.cpu["checkpoint"],
        "checkpoint_server_cpu_s": m.server["checkpoint"],
        "blocks_share": m.wall["append"] / m.wall["bare_append"] - 1,
        "blocks_cpu_share": m.total_cpu("append") / m.total_cpu("bare_append") - 1,
        "checkpoint_only_share": m.wall["checkpoint"] / m.wall["bare_append"],
        "checkpoint_share": added / m.wall["bare_append"],
        "checkpoint_cpu_share": added_cpu / m.total_cpu("bare_append"),
        "cadence_checkpoints": cadence_checkpoints,
        "cadence_blocks_share": m.wall["cadence_append"] / m.wall["bare_append"] - 1,
        "cadence_checkpoint_only_share": m.wall["cadence_checkpoint"] / m.wall["bare_append"],
        "cadence_share": cadence_wall / m.wall["bare_append"] - 1,
        "cadence_cpu_share": cadence_cpu / m.total_cpu("bare_append") - 1,
    }


def single_appends(rt: Runtime, m: Meter, signer: Signer, count: int, every: int) -> dict[str, float]:
    """One event per transaction (the ingest path), a checkpoint after every ``every`` of them."""
    for i in range(count):
        with m.phase("single", rt, quiesce=False), transaction(rt.sessions) as s:
            append_event(s, "recording.viewed", f"recording:{i}", {"via": "web"}, actor="token:bench")
        if (i + 1) % every == 0:
            with m.phase("single_checkpoint", rt, quiesce=False), derived_transaction(rt.sessions) as s:
                checkpoints.make_checkpoint(s, signer)
    return {
        "single_append_ms": 1000 * m.wall["single"] / count,
        "single_append_cpu_ms": 1000 * m.total_cpu("single") / count,
        "single_checkpoint_share": m.wall["single_checkpoint"] / m.wall["single"],
        "single_checkpoint_cpu_share": m.total_cpu("single_checkpoint") / m.total_cpu("single"),
    }


def verify(rt: Runtime, m: Meter, signer: Signer, events: int) -> dict[str, float]:
    """The whole verification, and bare SHA-256 over as many 200-byte leaves as the machine's baseline."""
    with m.phase("verify", rt), transaction(rt.sessions) as s:
        report = log_verify.verify_log(s, signer.verifier)
    if not report.ok or report.events != events:
        raise SystemExit(f"verify failed on an untouched log: {report.as_json()}")
    leaf = b"\x00" + b"x" * 200
    with m.phase("sha256"):
        for _ in range(events):
            hashlib.sha256(leaf).digest()
    return {
        "verify_per_s": events / m.wall["verify"],
        "verify_s": m.wall["verify"],
        "verify_cpu_s": m.cpu["verify"],
        "verify_server_cpu_s": m.server["verify"],
        "verify_per_cpu_s": events / m.total_cpu("verify"),
        "sha256_per_s": events / m.wall["sha256"],
        "sha256_per_cpu_s": events / m.cpu["sha256"],
    }


def proofs(rt: Runtime, m: Meter, events: int, count: int) -> dict[str, float]:
    rng = random.Random(11)
    times = []
    with m.phase("proofs", rt), transaction(rt.sessions) as s:
        for _ in range(count):
            t0 = time.perf_counter()
            checkpoints.event_proof(s, rng.randint(1, events))
            times.append(time.perf_counter() - t0)
    times.sort()
    return {
        "proof_median_ms": 1000 * statistics.median(times),
        "proof_p99_ms": 1000 * times[int(0.99 * len(times))],
        "proof_cpu_ms": 1000 * m.total_cpu("proofs") / count,
    }


def run_one(backend: str, work: Path, label: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    url = database(backend, work, f"audit_{backend}_{label}")
    bare_url = database(backend, work, f"audit_{backend}_{label}_bare")
    rt = build_runtime(Settings(home=work / f"home-{backend}-{label}", database_url=url))
    cadence_url = database(backend, work, f"audit_{backend}_{label}_cadence")
    bare = build_runtime(Settings(home=work / f"home-{backend}-{label}-bare", database_url=bare_url))
    cadence = build_runtime(Settings(home=work / f"home-{backend}-{label}-cadence", database_url=cadence_url))
    signer = Signer("bench.example/audit", Ed25519PrivateKey.generate())
    meter = Meter(url, bare_url, cadence_url)
    try:
        upgrade(rt.engine)
        upgrade(bare.engine)
        upgrade(cadence.engine)
        figures: dict[str, Any] = {"events": n, "load_average_1m_start": os.getloadavg()[0]}
        figures |= append_and_checkpoint(rt, bare, cadence, meter, signer, n, args)
        for other, other_url in ((bare, bare_url), (cadence, cadence_url)):
            other.close()
            drop(other_url)
        if not args.append_only:
            figures |= single_appends(rt, meter, signer, args.singles, args.singles_every)
            total = n + args.singles
            figures |= verify(rt, meter, signer, total)
            figures |= proofs(rt, meter, total, args.proofs)
        figures["load_average_1m"] = os.getloadavg()[0]
        return figures
    finally:
        meter.close()
        rt.close()
        bare.close()
        cadence.close()
        for each in (url, bare_url, cadence_url):
            drop(each)
            if each.startswith("sqlite:///"):  # gone before the next run's, not at the end of all
                for suffix in ("", "-wal", "-shm"):
                    Path(each.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events at 2N (full size)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--batch", type=int, default=10_000, help="events per bulk transaction and checkpoint")
    parser.add_argument("--singles", type=int, default=2_000, help="one-event transactions measured")
    parser.add_argument("--singles-every", type=int, default=100, help="single appends between checkpoints")
    parser.add_argument("--proofs", type=int, default=1_000)
    parser.add_argument(
        "--checkpoint-seconds",
        type=float,
        default=Settings.model_fields["checkpoint_seconds"].default,
        help="seconds of appending between the checkpoints of the product-cadence line (bwc run's setting)",
    )
    parser.add_argument(
        "--no-append-blocks", action="store_true", help="bulk appends write no block roots (the checkpoints hash them)"
    )
    parser.add_argument("--repeat", type=int, default=2, help="runs of each backend and size, for the spread")
    parser.add_argument(
        "--append-only", action="store_true", help="only the append lines (no single appends, verify or proofs)"
    )
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bwc-bench-audit-") as tmp:
        for backend in args.backends.split(","):
            for run in range(1, args.repeat + 1):
                for label, n in (("N", args.events // 2), ("2N", args.events)):
                    # a database and home of its own per run: a SQLite file of the same name would be appended to
                    f = run_one(backend, Path(tmp), f"{label}_{run}", n, args)
                    results[f"{backend} {label} run {run}"] = f
                    report(backend, f"{label} #{run}", f, args)
            for label in ("N", "2N"):
                runs = [results[f"{backend} {label} run {r}"] for r in range(1, args.repeat + 1)]
                print(spread(backend, label, runs), flush=True)
            if args.append_only:
                continue
            n1, n2 = results[f"{backend} N run 1"], results[f"{backend} 2N run 1"]
            print(
                f"{backend:10} growth N→2N: verify time ×{n2['verify_s'] / n1['verify_s']:.2f}, "
                f"proof ×{n2['proof_median_ms'] / n1['proof_median_ms']:.2f}, "
                f"tree share ×{n2['checkpoint_share'] / n1['checkpoint_share']:.2f} "
                "(targets at 1M: verify ≥ 100,000/s, proof < 10 ms, checkpoints < 10 % of appending)",
                flush=True,
            )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "audit.json").write_text(json.dumps(results, indent=2))


def report(backend: str, label: str, f: dict[str, Any], args: argparse.Namespace) -> None:
    """The lines of one run: append and tree share (strict), then the rest, then the share at bwc run's cadence."""
    line = (
        f"{backend:10} {label:5} events={f['events']:>8} append={f['append_per_s']:8.0f}/s "
        f"+tree {100 * f['checkpoint_share']:4.1f}% (CPU {100 * f['checkpoint_cpu_share']:4.1f}%; "
        f"blocks {100 * f['blocks_share']:4.1f}% + checkpoints {100 * f['checkpoint_only_share']:4.1f}%)"
    )
    if not args.append_only:
        line += (
            f" | one per transaction {f['single_append_ms']:.2f} ms (CPU {f['single_append_cpu_ms']:.2f} ms) "
            f"+checkpoints {100 * f['single_checkpoint_share']:4.1f}% "
            f"(CPU {100 * f['single_checkpoint_cpu_share']:4.1f}%) | "
            f"verify={f['verify_per_s']:8.0f}/s ({f['verify_s']:.1f} s; "
            f"{f['verify_per_s'] / f['sha256_per_s']:.2f} × bare SHA-256 {f['sha256_per_s']:.0f}/s; "
            f"per CPU second {f['verify_per_cpu_s']:.0f}/s = "
            f"{f['verify_per_cpu_s'] / f['sha256_per_cpu_s']:.2f} × SHA-256's) | "
            f"proof median {f['proof_median_ms']:.2f} ms p99 {f['proof_p99_ms']:.2f} ms "
            f"(CPU {f['proof_cpu_ms']:.2f} ms each)"
        )
    print(f"{line} | load={f['load_average_1m_start']:.2f}→{f['load_average_1m']:.2f}", flush=True)
    print(
        f"{backend:10} {label:5} at bwc run's cadence (a checkpoint per {args.checkpoint_seconds:g} s of "
        f"appending, {f['cadence_checkpoints']} made): +tree {100 * f['cadence_share']:4.1f}% "
        f"(CPU {100 * f['cadence_cpu_share']:4.1f}%; blocks {100 * f['cadence_blocks_share']:4.1f}% + "
        f"checkpoints {100 * f['cadence_checkpoint_only_share']:4.1f}%)",
        flush=True,
    )


def spread(backend: str, label: str, runs: list[dict[str, Any]]) -> str:
    """The lowest and highest share of the runs of one size: strict and at the cadence, wall and CPU."""

    def span(key: str) -> str:
        values = [100 * f[key] for f in runs]
        return f"{min(values):.1f}–{max(values):.1f} %"

    return (
        f"{backend:10} {label:5} spread of {len(runs)} runs: strict {span('checkpoint_share')} "
        f"(CPU {span('checkpoint_cpu_share')}), at the cadence {span('cadence_share')} "
        f"(CPU {span('cadence_cpu_share')})"
    )


if __name__ == "__main__":
    main()
