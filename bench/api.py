"""API latency benchmark (not a test): a running service on PostgreSQL over a synthetic city-month.

A city-month: 10 units, 300 devices, ``--actions`` enforcement actions (default 8,500) of 10–60 minutes with
2–3 devices each, filmed in two segments per device, plus spare recordings (about 40,000 recordings), all
within May 2024, linked by a full coverage recompute. The service runs as its own process (uvicorn, one
worker) on a loopback port; a load generator of threads (one ``httpx.Client`` each) sends a bounded number
of requests at concurrency 1 and 16 and prints p50/p95/p99/max per endpoint:

- case lookup ``GET /api/v1/cases/{n}`` as a reviewer of the case's unit (scope decided on every call) and
  as an auditor; target p95 < 50 ms at concurrency 16;
- the month's missing-recording report ``GET /api/v1/reports/missing`` as an auditor;
- ``GET /api/v1/healthz`` as the same-run baseline (what the machine and the HTTP stack cost alone).

Prints the machine's load average too, since other work on the machine slows every figure.
Writes ``bench/out/api.json``.

    .venv/bin/python -m bench.api [--actions 8500] [--requests 400]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import insert

from api.auth import create_token
from audit.linking import recompute_all
from bench.contention import percentiles
from bench.coverage import _recording, database, drop
from config.settings import Settings
from storage.db import transaction
from storage.migrate import upgrade
from storage.models import Action, ActionDevice, Device, Recording, Unit
from storage.runtime import Runtime, build_runtime

OUT = Path(__file__).resolve().parent / "out"
MONTH_START = datetime(2024, 5, 1, tzinfo=UTC)
TARGET_P95 = 0.050


def populate_month(rt: Runtime, n_actions: int, n_devices: int = 300, seed: int = 11) -> list[tuple[str, str]]:
    """The city-month; returns (case number, unit code) of every case."""
    rng = random.Random(seed)
    cases: dict[str, str] = {}
    with rt.engine.begin() as conn:
        conn.execute(insert(Unit), [{"id": i + 1, "code": f"U{i:02d}", "name": f"中队 {i}"} for i in range(10)])
        conn.execute(
            insert(Device),
            [
                {"id": i + 1, "serial": f"DSJ-{i:04d}", "unit_id": i % 10 + 1, "clock_offset_seconds": 0.0}
                for i in range(n_devices)
            ],
        )
        actions, links, recs = [], [], []
        rec_id = 0
        for a in range(n_actions):
            start = MONTH_START + timedelta(seconds=rng.randrange(30 * 86400))
            end = start + timedelta(minutes=rng.randint(10, 60))
            unit = rng.randrange(10)
            case = f"C{unit:02d}-{a // 3:06d}"
            cases[case] = f"U{unit:02d}"
            actions.append(
                {
                    "id": a + 1,
                    "action_id": f"A{a:07d}",
                    "case_number": case,
                    "unit_id": unit + 1,
                    "started_at": start,
                    "ended_at": end,
                    "created_at": start,
                    "updated_at": start,
                    "reasons": [],
                }
            )
            for d in rng.sample(range(unit * 30, unit * 30 + 30), rng.choice((2, 2, 3))):
                links.append({"action_id": a + 1, "device_id": d + 1, "source": "named"})
                cut = start + (end - start) * rng.uniform(0.3, 0.7)
                gap = timedelta(seconds=rng.choice((1, 2, 30)))
                for s, e in ((start - timedelta(seconds=20), cut), (cut + gap, end + timedelta(seconds=20))):
                    rec_id += 1
                    recs.append(_recording(rec_id, d + 1, s, e, start))
        for _ in range(n_actions // 10):
            rec_id += 1
            s = MONTH_START + timedelta(seconds=rng.randrange(30 * 86400))
            recs.append(_recording(rec_id, rng.randrange(n_devices) + 1, s, s + timedelta(minutes=5), s))
        for rows, model in ((actions, Action), (links, ActionDevice)):
            for chunk in range(0, len(rows), 20000):
                conn.execute(insert(model), rows[chunk : chunk + 20000])
        for chunk in range(0, len(recs), 20000):
            conn.execute(insert(Recording), recs[chunk : chunk + 20000])
    recompute_all(rt.sessions, rt.settings, MONTH_START + timedelta(days=40), "bench")
    with rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")
    print(f"populated: {n_actions} actions, {rec_id} recordings, {len(cases)} cases", flush=True)
    return sorted(cases.items())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def serve(env: dict[str, str], port: int, log: Path, workers: int = 1) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--log-level", "warning", "--no-access-log", "--workers", str(workers)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the service exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/healthz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the service did not answer within 60 s")


def load(base: str, urls: list[tuple[str, str]], concurrency: int) -> dict[str, float]:
    """Send every (url, token) once, ``concurrency`` at a time; latencies of 200 answers, errors counted."""
    samples: list[float] = []
    errors = 0
    lock = threading.Lock()
    queue = iter(urls)

    def worker() -> None:
        nonlocal errors
        with httpx.Client(base_url=base, timeout=60) as client:
            while True:
                with lock:
                    item = next(queue, None)
                if item is None:
                    return
                url, token = item
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                began = time.perf_counter()
                try:
                    status = client.get(url, headers=headers).status_code
                except httpx.HTTPError:  # a reset connection is an error to count, not a dead load thread
                    status = -1
                took = time.perf_counter() - began
                with lock:
                    if status == 200:
                        samples.append(took)
                    else:
                        errors += 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    figures = percentiles(samples)
    return {**figures, "errors": errors, "rps": len(samples) / wall if wall else 0.0}


def _ms(f: dict[str, float]) -> str:
    return (
        f"p50 {f['p50'] * 1000:7.1f} ms  p95 {f['p95'] * 1000:7.1f} ms  p99 {f['p99'] * 1000:7.1f} ms  "
        f"max {f['max'] * 1000:7.1f} ms  n={int(f['n'])} errors={int(f['errors'])} {f['rps']:.0f}/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actions", type=int, default=8500)
    parser.add_argument("--requests", type=int, default=400, help="case lookups per run (reports: a tenth)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes serving the API")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bwc-bench-api-") as work:
        url = database("postgresql", Path(work), "api")
        settings = Settings(home=Path(work) / "home", database_url=url, stable_seconds=0)
        proc = None
        try:
            rt = build_runtime(settings)
            upgrade(rt.engine)
            began = time.perf_counter()
            cases = populate_month(rt, args.actions)
            print(f"populate + link: {time.perf_counter() - began:.1f} s", flush=True)
            secrets: dict[str, str] = {}
            with transaction(rt.sessions) as s:
                _t, secrets["auditor"] = create_token(s, role="auditor", name="bench-auditor", actor="bench")
                for i in range(10):
                    code = f"U{i:02d}"
                    _t, secrets[code] = create_token(
                        s, role="reviewer", name=f"bench-{code}", units=[code], actor="bench"
                    )
            rt.close()
            env = {k: v for k, v in os.environ.items() if not k.startswith("BWC_")}
            env |= {"BWC_HOME": str(settings.home), "BWC_DATABASE_URL": url}
            port = _free_port()
            proc = serve(env, port, Path(work) / "service.log", args.workers)
            print(f"service: {args.workers} worker process(es)", flush=True)
            base = f"http://127.0.0.1:{port}"
            rng = random.Random(5)
            picks = [rng.choice(cases) for _ in range(args.requests)]
            plans: dict[str, list[tuple[str, str]]] = {
                "healthz (baseline)": [("/api/v1/healthz", "")] * args.requests,
                "case lookup, reviewer of its unit": [(f"/api/v1/cases/{c}", secrets[u]) for c, u in picks],
                "case lookup, auditor": [(f"/api/v1/cases/{c}", secrets["auditor"]) for c, _u in picks],
                "missing report, May, auditor": [
                    ("/api/v1/reports/missing?from=2024-05-01&to=2024-05-31", secrets["auditor"])
                ]
                * max(4, args.requests // 40),
            }
            load(base, plans["case lookup, auditor"][:20], 4)  # warm-up: connections, caches
            results: dict[str, dict[str, dict[str, float]]] = {}
            for name, urls in plans.items():
                for concurrency in (1, 16):
                    f = load(base, urls, concurrency)
                    results.setdefault(name, {})[f"c{concurrency}"] = f
                    print(f"{name:38s} c={concurrency:<2d} {_ms(f)}", flush=True)
            lookup = results["case lookup, reviewer of its unit"]["c16"]["p95"]
            verdict = "meets" if lookup < TARGET_P95 else "MISSES"
            print(
                f"case lookup p95 at 16: {lookup * 1000:.1f} ms — {verdict} the target (< {TARGET_P95 * 1000:.0f} ms)"
            )
            print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
            (OUT / "api.json").write_text(
                json.dumps({"actions": args.actions, "results": results, "loadavg": os.getloadavg()}, indent=2)
            )
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
            drop(url)


if __name__ == "__main__":
    main()
