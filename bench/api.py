"""API latency benchmark (not a test): a running service on PostgreSQL over a synthetic city-month.

A city-month: 10 units, 300 devices, ``--actions`` enforcement actions (default 8,500) of 10–60 minutes with
2–3 devices each, filmed in two segments per device, plus spare recordings (about 40,000 recordings), all
within May 2024, linked by a full coverage recompute. The service is ``bwc run --no-watch --workers N`` on a
loopback port; the load generator is ``wrk`` (C, epoll; ``make wrk`` installs Debian's package), what an
operator would point at it, driven by ``bench/wrk/rotate.lua``: each connection sends the next request of a
plan (the case URLs of the month with each unit's reviewer token), for ``--seconds`` at concurrency 1 and 16.
Printed per endpoint: p50/p95/p99/max, requests/s, errors (any answer outside 2xx, or a socket error: a run
with errors is not a result and the bench exits 1), and the service's CPU time per request (all its
processes), which load on the machine disturbs less than latency:

- case lookup ``GET /api/v1/cases/{n}`` as a reviewer of the case's unit (scope decided on every call) and
  as an auditor; target p95 < 50 ms at concurrency 16;
- the month's missing-recording report ``GET /api/v1/reports/missing`` as an auditor;
- ``GET /api/v1/healthz``: the floor of this machine (the HTTP stack and the load generator alone).

Prints the machine's load average too, since other work on the machine slows every figure.
Writes ``bench/out/api.json``.

    .venv/bin/python -m bench.api [--actions 8500] [--seconds 10] [--report-seconds 60] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import psutil
from sqlalchemy import insert

from api.auth import create_token
from audit.linking import recompute_all
from bench.coverage import database, drop, filmed, insert_chunks, spares
from config.settings import Settings
from storage.db import transaction
from storage.migrate import upgrade
from storage.models import Action, ActionDevice, Device, Recording, Unit
from storage.runtime import Runtime, build_runtime

OUT = Path(__file__).resolve().parent / "out"
LUA = Path(__file__).resolve().parent / "wrk" / "rotate.lua"
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
        actions, links = [], []
        recs: list[dict[str, Any]] = []
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
                recs += filmed(rng, len(recs) + 1, d + 1, start, end)
        recs += spares(rng, len(recs) + 1, n_actions // 10, n_devices, MONTH_START, 30)
        for rows, model in ((actions, Action), (links, ActionDevice), (recs, Recording)):
            insert_chunks(conn, model, rows)
    recompute_all(rt.sessions, rt.settings, MONTH_START + timedelta(days=40), "bench")
    with rt.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE")
    print(f"populated: {n_actions} actions, {len(recs)} recordings, {len(cases)} cases", flush=True)
    return sorted(cases.items())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def serve(env: dict[str, str], port: int, log: Path, workers: int = 1) -> subprocess.Popen[bytes]:
    """``bwc run`` as an operator starts it (API only), answering on ``port``."""
    bwc = Path(sys.executable).with_name("bwc")
    cmd = [str(bwc), "run", "--no-watch", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 600  # a bound on a loaded machine's start-up (bwc init, worker imports)
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the service exited: {log.read_text()[-2000:]}")
        try:
            if httpx2.get(f"http://127.0.0.1:{port}/api/v1/healthz", timeout=2).status_code == 200:
                return proc
        except httpx2.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the service did not answer within 600 s")


def cpu_seconds(proc: psutil.Process) -> float:
    """User + system CPU time of the service: its process and every worker process under it."""
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += t.user + t.system
    return total


def wrk(base: str, plan: Path, concurrency: int, seconds: int, service: psutil.Process) -> dict[str, float]:
    """One wrk run over ``plan`` at ``concurrency`` connections; its figures (seconds), errors and CPU."""
    threads = min(concurrency, os.cpu_count() or 1)
    cmd = ["wrk", "-t", str(threads), "-c", str(concurrency), "-d", f"{seconds}s", "--timeout", "300s"]
    cmd += ["-s", str(LUA), base, "--", str(plan)]
    cpu_before, wall_before = cpu_seconds(service), time.perf_counter()
    children_before = os.times()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    children_after = os.times()
    server_cpu = cpu_seconds(service) - cpu_before
    wall = time.perf_counter() - wall_before
    if done.returncode != 0:
        raise SystemExit(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
    line = next((x for x in done.stdout.splitlines() if x.startswith("{")), None)
    if line is None:
        raise SystemExit(f"wrk printed no summary: {done.stdout}{done.stderr}")
    raw = json.loads(line)
    n = int(raw["requests"])
    errors = int(raw["non2xx"]) + sum(int(raw[k]) for k in ("connect", "read", "write", "timeout"))
    wrk_cpu = (children_after.children_user + children_after.children_system) - (
        children_before.children_user + children_before.children_system
    )
    return {
        **{k: raw[k] / 1e6 for k in ("p50", "p95", "p99", "max", "mean")},
        "n": n,
        "errors": errors,
        "non2xx": int(raw["non2xx"]),
        "rps": n / (raw["duration_us"] / 1e6),
        "server_cpu_ms": 1000 * server_cpu / n if n else 0.0,
        "wrk_cpu_ms": 1000 * wrk_cpu / n if n else 0.0,
        "wall": wall,
    }


def _ms(f: dict[str, float]) -> str:
    return (
        f"p50 {f['p50'] * 1000:7.1f} ms  p95 {f['p95'] * 1000:7.1f} ms  p99 {f['p99'] * 1000:7.1f} ms  "
        f"max {f['max'] * 1000:7.1f} ms  {f['rps']:6.0f}/s  n={int(f['n'])} errors={int(f['errors'])}  "
        f"server CPU {f['server_cpu_ms']:.2f} ms/req"
    )


def _plan(path: Path, lines: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{url}\t{token}\n" for url, token in lines), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actions", type=int, default=8500)
    parser.add_argument("--seconds", type=int, default=10, help="length of each wrk run (whole seconds)")
    parser.add_argument(
        "--report-seconds", type=int, default=60, help="length of each missing-report run: a report takes seconds"
    )
    parser.add_argument("--workers", type=int, default=1, help="bwc run --workers: processes serving HTTP")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit(
            "wrk (the load generator) is not installed: `make wrk` installs Debian's package "
            "(apt-get install wrk), or put any wrk 4 on PATH"
        )
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
            # the service as deployed, but no fixity sampling: the synthetic recordings have no stored bytes
            env |= {"BWC_HOME": str(settings.home), "BWC_DATABASE_URL": url, "BWC_FIXITY_SAMPLE_PER_HOUR": "0"}
            port = _free_port()
            proc = serve(env, port, Path(work) / "service.log", args.workers)
            service = psutil.Process(proc.pid)
            print(f"service: bwc run --workers {args.workers}; wrk, {args.seconds} s a run", flush=True)
            base = f"http://127.0.0.1:{port}"
            rng = random.Random(5)
            order = rng.sample(cases, len(cases))
            missing = "/api/v1/reports/missing?from=2024-05-01&to=2024-05-31"
            plans = {
                "healthz (the machine's floor)": [("/api/v1/healthz", "")],
                "case lookup, reviewer of its unit": [(f"/api/v1/cases/{c}", secrets[u]) for c, u in order],
                "case lookup, auditor": [(f"/api/v1/cases/{c}", secrets["auditor"]) for c, _u in order],
                "missing report, May, auditor": [(missing, secrets["auditor"])],
            }
            files = {name: _plan(Path(work) / f"plan{i}.txt", lines) for i, (name, lines) in enumerate(plans.items())}
            wrk(base, files["case lookup, auditor"], 4, 2, service)  # warm-up: connections, caches
            results: dict[str, dict[str, dict[str, float]]] = {}
            failed = False
            for name, plan in files.items():
                seconds = args.report_seconds if name.startswith("missing") else args.seconds
                for concurrency in (1, 16):
                    f = wrk(base, plan, concurrency, seconds, service)
                    results.setdefault(name, {})[f"c{concurrency}"] = f
                    if f["n"] == 0:  # wrk counts only answers within the run: none is no figure at all
                        print(f"{name:34s} c={concurrency:<2d} no answer within {seconds} s", flush=True)
                        failed = True
                        continue
                    print(f"{name:34s} c={concurrency:<2d} {_ms(f)}", flush=True)
                    failed = failed or f["errors"] > 0
            lookup = results["case lookup, reviewer of its unit"]["c16"]
            floor = results["healthz (the machine's floor)"]["c16"]
            verdict = "meets" if lookup["p95"] < TARGET_P95 else "MISSES"
            print(
                f"case lookup p95 at 16: {lookup['p95'] * 1000:.1f} ms — {verdict} the target "
                f"(< {TARGET_P95 * 1000:.0f} ms); healthz p95 at 16: {floor['p95'] * 1000:.1f} ms "
                f"({lookup['p95'] / floor['p95']:.1f} × the floor); {lookup['rps']:.0f} lookups/s"
            )
            print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
            (OUT / "api.json").write_text(
                json.dumps(
                    {
                        "actions": args.actions,
                        "workers": args.workers,
                        "seconds": args.seconds,
                        "results": results,
                        "loadavg": os.getloadavg(),
                    },
                    indent=2,
                )
            )
            if failed:
                raise SystemExit("some requests failed or none answered: these figures are not a result")
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=60)
            drop(url)


if __name__ == "__main__":
    main()
