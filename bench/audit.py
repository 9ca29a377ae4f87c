"""Audit-log benchmark (not a test): append, checkpoint, verify and prove on SQLite and PostgreSQL, at N and 2N.

At full size (2N) 1,000,000 events. Per backend and size it prints:
- append: events/s through ``append_events`` in transactions of ``--batch`` events, the way bulk writers
  (a coverage recompute) append; and the same through ``append_event``, one event per transaction, the way an
  ingest or a request appends (a sample of ``--singles``);
- the cost the tamper-evident log adds to appending: the append path itself is unchanged, so what it adds is
  the checkpoints' work (extending the stored tree over the new events, signing). A checkpoint is made after
  every batch (far more often than once a minute at any real event rate) and its time is given as a share of
  the append time measured in the same run: the target is < 10 %;
- verify: ``bwc audit verify``'s work over every event, in events/s (target ≥ 100,000/s), with the baseline of
  bare SHA-256 over the same number of leaf-sized inputs on this machine, since the machine's load moves both;
- proofs: ``--proofs`` inclusion proofs of random events against the latest checkpoint, median and p99
  (target < 10 ms at 1M events), each one the complete tlog-proof text an auditor downloads;
and the growth from N to 2N, and the load average. Writes ``bench/out/audit.json``.

    .venv/bin/python -m bench.audit [--events 1000000] [--backends sqlite,postgresql] [--proofs 1000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from audit import checkpoints, log_verify
from audit.notes import Signer
from bench.coverage import database, drop
from config.settings import Settings
from storage.db import transaction
from storage.events import append_event, append_events
from storage.migrate import upgrade
from storage.runtime import Runtime, build_runtime

OUT = Path(__file__).resolve().parent / "out"


def _items(start: int, count: int) -> list[tuple[str, str, dict[str, Any]]]:
    """Events shaped like a recompute's links: a kind, a recording subject, a few details."""
    return [
        ("recording.linked", f"recording:{n}", {"action": f"A{n // 3:07d}", "device": f"DSJ-{n % 300:04d}", "n": n})
        for n in range(start, start + count)
    ]


def append_and_checkpoint(rt: Runtime, signer: Signer, n: int, batch: int) -> dict[str, float]:
    """Bulk appends with a checkpoint after every batch; the two timed apart."""
    t_append = t_checkpoint = 0.0
    for start in range(0, n, batch):
        items = _items(start, min(batch, n - start))
        t0 = time.perf_counter()
        with transaction(rt.sessions) as s:
            append_events(s, items)
        t1 = time.perf_counter()
        with transaction(rt.sessions) as s:
            checkpoints.make_checkpoint(s, signer)
        t_append += t1 - t0
        t_checkpoint += time.perf_counter() - t1
    return {"append_per_s": n / t_append, "checkpoint_s": t_checkpoint, "checkpoint_share": t_checkpoint / t_append}


def single_appends(rt: Runtime, signer: Signer, count: int, every: int) -> dict[str, float]:
    """One event per transaction (the ingest path), a checkpoint after every ``every`` of them."""
    t_append = t_checkpoint = 0.0
    for i in range(count):
        t0 = time.perf_counter()
        with transaction(rt.sessions) as s:
            append_event(s, "recording.viewed", f"recording:{i}", {"via": "web"}, actor="token:bench")
        t_append += time.perf_counter() - t0
        if (i + 1) % every == 0:
            t1 = time.perf_counter()
            with transaction(rt.sessions) as s:
                checkpoints.make_checkpoint(s, signer)
            t_checkpoint += time.perf_counter() - t1
    return {"single_append_ms": 1000 * t_append / count, "single_checkpoint_share": t_checkpoint / t_append}


def verify(rt: Runtime, signer: Signer, events: int) -> dict[str, float]:
    """The whole verification, and bare SHA-256 over as many 200-byte leaves as the machine's baseline."""
    t0 = time.perf_counter()
    with transaction(rt.sessions) as s:
        report = log_verify.verify_log(s, signer.verifier)
    elapsed = time.perf_counter() - t0
    if not report.ok or report.events != events:
        raise SystemExit(f"verify failed on an untouched log: {report.as_json()}")
    leaf = b"\x00" + b"x" * 200
    t1 = time.perf_counter()
    for _ in range(events):
        hashlib.sha256(leaf).digest()
    sha_per_s = events / (time.perf_counter() - t1)
    return {"verify_per_s": events / elapsed, "verify_s": elapsed, "sha256_per_s": sha_per_s}


def proofs(rt: Runtime, events: int, count: int) -> dict[str, float]:
    rng = random.Random(11)
    times = []
    with transaction(rt.sessions) as s:
        for _ in range(count):
            t0 = time.perf_counter()
            checkpoints.event_proof(s, rng.randint(1, events))
            times.append(time.perf_counter() - t0)
    times.sort()
    return {"proof_median_ms": 1000 * statistics.median(times), "proof_p99_ms": 1000 * times[int(0.99 * len(times))]}


def run_one(backend: str, work: Path, label: str, n: int, args: argparse.Namespace) -> dict[str, Any]:
    url = database(backend, work, f"audit_{backend}_{label}")
    rt = build_runtime(Settings(home=work / f"home-{backend}-{label}", database_url=url))
    signer = Signer("bench.example/audit", Ed25519PrivateKey.generate())
    try:
        upgrade(rt.engine)
        figures: dict[str, Any] = {"events": n}
        figures |= append_and_checkpoint(rt, signer, n, args.batch)
        figures |= single_appends(rt, signer, args.singles, args.singles_every)
        total = n + args.singles
        figures |= verify(rt, signer, total)
        figures |= proofs(rt, total, args.proofs)
        figures["load_average_1m"] = os.getloadavg()[0]
        return figures
    finally:
        rt.close()
        drop(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1_000_000, help="events at 2N (full size)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--batch", type=int, default=10_000, help="events per bulk transaction and checkpoint")
    parser.add_argument("--singles", type=int, default=2_000, help="one-event transactions measured")
    parser.add_argument("--singles-every", type=int, default=100, help="single appends between checkpoints")
    parser.add_argument("--proofs", type=int, default=1_000)
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bwc-bench-audit-") as tmp:
        for backend in args.backends.split(","):
            for label, n in (("N", args.events // 2), ("2N", args.events)):
                f = results[f"{backend} {label}"] = run_one(backend, Path(tmp), label, n, args)
                print(
                    f"{backend:10} {label:2} events={n:>8} append={f['append_per_s']:8.0f}/s "
                    f"+checkpoints {100 * f['checkpoint_share']:4.1f}% | one per transaction "
                    f"{f['single_append_ms']:.2f} ms +checkpoints {100 * f['single_checkpoint_share']:4.1f}% | "
                    f"verify={f['verify_per_s']:8.0f}/s ({f['verify_s']:.1f} s; "
                    f"{f['verify_per_s'] / f['sha256_per_s']:.2f} × bare SHA-256 {f['sha256_per_s']:.0f}/s) | "
                    f"proof median {f['proof_median_ms']:.2f} ms p99 {f['proof_p99_ms']:.2f} ms | "
                    f"load={f['load_average_1m']:.2f}",
                    flush=True,
                )
            n1, n2 = results[f"{backend} N"], results[f"{backend} 2N"]
            print(
                f"{backend:10} growth N→2N: verify time ×{n2['verify_s'] / n1['verify_s']:.2f}, "
                f"proof ×{n2['proof_median_ms'] / n1['proof_median_ms']:.2f}, "
                f"checkpoint share ×{n2['checkpoint_share'] / n1['checkpoint_share']:.2f} "
                "(targets at 1M: verify ≥ 100,000/s, proof < 10 ms, checkpoints < 10 % of appending)",
                flush=True,
            )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "audit.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
