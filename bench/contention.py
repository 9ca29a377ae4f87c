"""What ingest and readers feel while a full recompute runs: commit and read latencies (p50/p95/p99/max).

A writer thread does what an ingest commits (a recording row, its audit event and the re-judging of the
actions it touches) every ~100 ms; a reader thread reads one action as ``GET /api/v1/actions/{id}`` does, every
~100 ms. Both run for the whole recompute; the target is p99 < 1 s for each (a batch, not the run, is the
longest anyone waits).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select

from audit.linking import Recomputed, on_recordings_changed
from audit.shapes import action_json
from config.settings import Settings
from storage.db import reading, transaction
from storage.events import append_event
from storage.models import Action, ActionDevice, Recording
from storage.runtime import Runtime

PACE_SECONDS = 0.1  # the load's rhythm (not synchronization: the threads stop on an Event)
TARGET_P99_S = 1.0


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99/max in seconds (nearest rank), and how many samples."""
    if not samples:
        return {"n": 0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(samples)

    def rank(p: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, round(p * len(ordered)) - 1))]

    return {"n": len(ordered), "p50": rank(0.50), "p95": rank(0.95), "p99": rank(0.99), "max": ordered[-1]}


def under_load(
    rt: Runtime,
    settings: Settings,
    make_recording: Callable[[int, int, datetime, datetime, datetime], dict[str, Any]],
    recompute: Callable[[], Recomputed],
) -> tuple[Recomputed, dict[str, dict[str, float]]]:
    """Run ``recompute`` while a writer and a reader thread measure their latencies."""
    with reading(rt.sessions) as s:
        sample = s.execute(select(Action.id, Action.started_at, Action.ended_at).limit(2000)).all()
        next_id = (s.scalar(select(func.max(Recording.id))) or 0) + 1
        device_of: dict[int, int] = {
            aid: did for aid, did in s.execute(select(ActionDevice.action_id, ActionDevice.device_id))
        }
    stop = threading.Event()
    writes: list[float] = []
    reads: list[float] = []

    def writer() -> None:
        rng, rid = random.Random(5), next_id
        while not stop.is_set():
            aid, start, end = rng.choice(sample)
            rec = make_recording(rid, device_of[aid], start + timedelta(seconds=1), end, start)
            t0 = time.perf_counter()
            with transaction(rt.sessions) as s:
                s.execute(insert(Recording), [rec])
                append_event(s, "recording.stored", f"recording:{rid}", {"sha256": rec["sha256"]}, "bench")
                on_recordings_changed(s, settings, [rid], "bench")
            writes.append(time.perf_counter() - t0)
            rid += 1
            stop.wait(PACE_SECONDS)

    def reader() -> None:
        rng = random.Random(6)
        while not stop.is_set():
            aid = rng.choice(sample)[0]
            t0 = time.perf_counter()
            with reading(rt.sessions) as s:
                action = s.get(Action, aid)
                assert action is not None
                action_json(s, action, datetime.now(action.started_at.tzinfo))
            reads.append(time.perf_counter() - t0)
            stop.wait(PACE_SECONDS)

    threads = [threading.Thread(target=writer, name="bench-write"), threading.Thread(target=reader, name="bench-read")]
    for thread in threads:
        thread.start()
    try:
        result = recompute()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    return result, {"ingest_commit": percentiles(writes), "action_read": percentiles(reads)}


def describe(figures: dict[str, dict[str, float]]) -> str:
    """One line per measurement, beside the target."""
    lines = []
    for name, p in figures.items():
        verdict = "ok" if p["p99"] < TARGET_P99_S else "OVER TARGET"
        lines.append(
            f"    during full recompute: {name:13} n={p['n']:.0f} p50={p['p50'] * 1000:.0f}ms "
            f"p95={p['p95'] * 1000:.0f}ms p99={p['p99'] * 1000:.0f}ms max={p['max'] * 1000:.0f}ms "
            f"(target p99 < {TARGET_P99_S:.0f} s: {verdict})"
        )
    return "\n".join(lines)
