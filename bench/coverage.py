"""Coverage benchmark (not a test): a synthetic city on SQLite and PostgreSQL, at N and 2N.

At full size (2N): 300 devices, 100,000 actions and about 480,000 recordings over a year. Prints, per backend and
size: the time to recompute all coverage (a first run that makes every link, then a second that finds
nothing to change), to add one recording (incremental, median of 25), and to produce a one-month
missing-recording report in Asia/Shanghai (best of 3; with its late uploads, sequence holes and unclaimed
recordings), then how each grows from N to 2N (1.0 would be constant, 2.0 linear), and the machine's load
average, since other work on the machine slows every figure. Then a third full recompute, after a policy
change (link margin 30 s: every action relinked), runs with an ingest-like writer and an action reader beside
it (``bench/contention.py``): their latencies are printed as p50/p95/p99/max next to the target (p99 < 1 s).
Writes ``bench/out/coverage.json``.

    .venv/bin/python -m bench.coverage [--actions 100000] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, create_engine, insert, select, text

from audit.linking import on_recordings_changed, recompute_all
from audit.reports import missing_report
from bench.contention import describe, under_load
from config.settings import Settings
from storage.db import transaction
from storage.migrate import upgrade
from storage.models import Action, ActionDevice, Device, Recording, Unit
from storage.runtime import Runtime, build_runtime

OUT = Path(__file__).resolve().parent / "out"
YEAR_START = datetime(2024, 1, 1, tzinfo=UTC)
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def populate(rt: Runtime, n_actions: int, n_devices: int = 300, seed: int = 7) -> None:
    """Actions of 10–60 minutes, 2–3 devices each, filmed in 1–2 segments per device (some with gaps)."""
    rng = random.Random(seed)
    with rt.engine.begin() as conn:
        conn.execute(insert(Unit), [{"id": i + 1, "code": f"U{i:02d}", "name": f"中队 {i}"} for i in range(10)])
        conn.execute(
            insert(Device),
            [
                {
                    "id": i + 1,
                    "serial": f"DSJ-{i:04d}",
                    "unit_id": i % 10 + 1,
                    "clock_offset_seconds": 0.0,
                    "created_at": YEAR_START,
                }
                for i in range(n_devices)
            ],
        )
        actions, links = [], []
        recs: list[dict[str, Any]] = []
        for a in range(n_actions):
            start = YEAR_START + timedelta(seconds=rng.randrange(365 * 86400))
            end = start + timedelta(minutes=rng.randint(10, 60))
            unit = rng.randrange(10)
            devices = rng.sample(range(unit * 30, unit * 30 + 30), rng.choice((2, 2, 3)))
            actions.append(
                {
                    "id": a + 1,
                    "action_id": f"A{a:07d}",
                    "case_number": f"C{a // 3:06d}",
                    "unit_id": unit + 1,
                    "started_at": start,
                    "ended_at": end,
                    "created_at": start,
                    "updated_at": start,
                    "reasons": [],
                }
            )
            for d in devices:
                links.append({"action_id": a + 1, "device_id": d + 1, "source": "named"})
                recs += filmed(rng, len(recs) + 1, d + 1, start, end)
        # Spare recordings at random times, most of which no action claims: one for every ten actions.
        recs += spares(rng, len(recs) + 1, n_actions // 10, n_devices, YEAR_START, 365)
        _late_and_sequences(recs, rng)
        for rows, model in ((actions, Action), (links, ActionDevice), (recs, Recording)):
            insert_chunks(conn, model, rows)
    # Statistics as autovacuum would have them a while after a bulk load.
    if rt.engine.dialect.name == "postgresql":
        with rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    else:
        with rt.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def _late_and_sequences(recs: list[dict[str, Any]], rng: random.Random) -> None:
    """One recording in 20 docks 30 h after it ended (late); per device, one file number in 100 is missing."""
    for rec in recs:
        if rng.random() < 0.05:
            rec["received_at"] = rec["ended_at"] + timedelta(hours=30)
    by_device: dict[int, list[dict[str, Any]]] = {}
    for rec in recs:
        by_device.setdefault(rec["device_id"], []).append(rec)
    for device_recs in by_device.values():
        number = 0
        for rec in sorted(device_recs, key=lambda r: (r["started_at"], r["id"])):
            number += 2 if rng.random() < 0.01 else 1
            rec["sequence"] = number


def filmed(rng: random.Random, first_id: int, device_id: int, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """One device's two recordings of an action, from 20 s before to 20 s after it, cut by a gap of 1, 2 or 30 s
    (only the last is a shortfall at the default margin)."""
    cut = start + (end - start) * rng.uniform(0.3, 0.7)
    gap = timedelta(seconds=rng.choice((1, 2, 30)))
    spans = ((start - timedelta(seconds=20), cut), (cut + gap, end + timedelta(seconds=20)))
    return [_recording(first_id + i, device_id, s, e, start) for i, (s, e) in enumerate(spans)]


def spares(
    rng: random.Random, first_id: int, count: int, n_devices: int, origin: datetime, days: int
) -> list[dict[str, Any]]:
    """Five-minute recordings at random times within ``days`` of ``origin``, on random devices."""
    found = []
    for i in range(count):
        s = origin + timedelta(seconds=rng.randrange(days * 86400))
        found.append(_recording(first_id + i, rng.randrange(n_devices) + 1, s, s + timedelta(minutes=5), s))
    return found


def insert_chunks(conn: Connection, model: Any, rows: list[dict[str, Any]], size: int = 20000) -> None:
    for chunk in range(0, len(rows), size):
        conn.execute(insert(model), rows[chunk : chunk + size])


def _recording(rid: int, device_id: int, start: datetime, end: datetime, received: datetime) -> dict[str, Any]:
    return {
        "id": rid,
        "sha256": uuid.uuid4().hex + uuid.uuid4().hex,
        "size": 1000,
        "object_key": "k",
        "device_id": device_id,
        "original_name": f"{rid}.mp4",
        "started_at": start,
        "ended_at": end,
        "time_source": "filename",
        "received_at": received + timedelta(hours=2),
        "verified_at": received,
        "duration_seconds": (end - start).total_seconds(),
        "has_video": True,
        "has_audio": True,
        "status": "ok",
        "legal_hold": False,
        "sequence": None,
    }


def measure(rt: Runtime, settings: Settings) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    now = datetime(2025, 6, 1, tzinfo=UTC)
    figures: dict[str, float] = {}
    for key in ("full_recompute_s", "second_recompute_s"):
        t0 = time.perf_counter()
        recompute_all(rt.sessions, settings, now, "bench")
        figures[key] = time.perf_counter() - t0
    # a policy change (a wider link margin: every action relinked) with an ingest-like writer and an action
    # reader beside it, then back to the policy before
    wide = settings.model_copy(update={"link_margin_seconds": 30.0})
    t0 = time.perf_counter()
    _done, contention = under_load(rt, wide, _recording, lambda: recompute_all(rt.sessions, wide, now, "bench"))
    figures["loaded_recompute_s"] = time.perf_counter() - t0
    for name, values in contention.items():
        figures.update({f"{name}_{key}": value for key, value in values.items()})
    recompute_all(rt.sessions, settings, now, "bench")

    rng = random.Random(11)
    samples = []
    with rt.sessions() as s:
        rows = s.execute(select(Action.id, Action.started_at, Action.ended_at).limit(2000)).all()
        next_id = (s.scalar(select(Recording.id).order_by(Recording.id.desc()).limit(1)) or 0) + 1
        dev_of = {a: d for a, d in s.execute(select(ActionDevice.action_id, ActionDevice.device_id))}
    for i in range(25):
        aid, start, end = rng.choice(rows)
        rec = _recording(next_id + i, dev_of[aid], start, end, start)
        t0 = time.perf_counter()
        with transaction(rt.sessions) as s:
            s.execute(insert(Recording), [rec])
            on_recordings_changed(s, settings, [rec["id"]], "bench")
        samples.append(time.perf_counter() - t0)
    figures["incremental_ms"] = statistics.median(samples) * 1000
    figures["incremental_max_ms"] = max(samples) * 1000

    local = settings.model_copy(update={"timezone": "Asia/Shanghai"})
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        with rt.sessions() as s:
            report = missing_report(s, local, date(2024, 3, 1), date(2024, 3, 31), None, now)
        best = min(best, time.perf_counter() - t0)
    figures["month_report_s"] = best
    for key in ("actions", "late_uploads", "missing_files", "unclaimed"):
        figures[f"month_report_{key}"] = len(report[key])
    return figures, contention


def database(backend: str, work: Path, tag: str) -> str:
    if backend == "sqlite":
        return f"sqlite:///{work / f'{tag}.db'}"
    name = f"bwc_bench_{tag}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


def drop(url: str) -> None:
    """Free the disk between sizes: a database of 2N actions is large, and the next one is made beside it."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    elif url.startswith("postgresql"):
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actions", type=int, default=100_000, help="actions at 2N (full size)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bwc-bench-cov-") as tmp:
        work = Path(tmp)
        for backend in args.backends.split(","):
            for label, n in (("N", args.actions // 2), ("2N", args.actions)):
                url = database(backend, work, f"{backend}_{label}")
                settings = Settings(home=work / f"home-{backend}-{label}", database_url=url)
                rt = build_runtime(settings)
                try:
                    upgrade(rt.engine)
                    t0 = time.perf_counter()
                    populate(rt, n)
                    populate_s = time.perf_counter() - t0
                    measured, contention = measure(rt, settings)
                    figures = {"actions": n, "populate_s": populate_s, **measured}
                finally:
                    rt.close()
                    drop(url)
                results[f"{backend} {label}"] = figures
                figures["load_average_1m"] = os.getloadavg()[0]
                print(
                    f"{backend:10} {label:2} actions={n:>7} full={figures['full_recompute_s']:6.1f}s "
                    f"(again {figures['second_recompute_s']:5.1f}s) "
                    f"incremental={figures['incremental_ms']:6.1f}ms (max {figures['incremental_max_ms']:.0f}) "
                    f"month report={figures['month_report_s']:5.2f}s "
                    f"({figures['month_report_actions']:.0f} actions, {figures['month_report_late_uploads']:.0f} late, "
                    f"{figures['month_report_missing_files']:.0f} holes, "
                    f"{figures['month_report_unclaimed']:.0f} unclaimed) "
                    f"load={figures['load_average_1m']:.2f}\n"
                    f"    policy-change recompute under load: {figures['loaded_recompute_s']:.1f}s\n"
                    f"{describe(contention)}",
                    flush=True,
                )
            n1, n2 = results[f"{backend} N"], results[f"{backend} 2N"]
            print(
                f"{backend:10} growth N→2N: full ×{n2['full_recompute_s'] / n1['full_recompute_s']:.2f}, "
                f"incremental ×{n2['incremental_ms'] / n1['incremental_ms']:.2f}, "
                f"report ×{n2['month_report_s'] / n1['month_report_s']:.2f} "
                "(targets at 2N: full < 60 s, incremental < 50 ms, month report < 2 s)"
            )
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "coverage.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
