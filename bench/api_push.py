"""Station push benchmark (not a test): push throughput for one and four stations at once against local
``bwc ingest`` of the same amount of bytes in the same run, and how much a resumed upload re-sends.

Everything is real: ``bwc run`` (uvicorn) on a free loopback port in one ``BWC_HOME``, stations as
``bwc watch DIR --server URL --once`` processes in their own homes, the local baseline as ``bwc ingest FILE…``
into a fresh home on the same kind of database. Each set is distinct random bytes (no duplicates), named
``.mp4`` (ffprobe refuses them quickly: both paths pay that the same). Prints figures and ratios; writes
``bench/out/api_push.json``.

    .venv/bin/python -m bench.api_push [--files 8] [--mib 64] [--resume-gib 1] [--db-url URL] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2

from ingest.push_queue import PushQueue, queue_path

ROOT = Path(__file__).resolve().parent.parent
BWC = str(Path(sys.executable).with_name("bwc"))
OUT = ROOT / "bench" / "out"
MIB = 1024 * 1024


def _env(home: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("BWC_")}
    return {**base, "BWC_HOME": str(home), "BWC_STABLE_SECONDS": "0", **extra}


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run([BWC, *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"bwc {' '.join(args[:2])} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _files(folder: Path, count: int, size: int, tag: str) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    block = 4 * MIB
    for i in range(count):
        with open(folder / f"DEV-{tag}{i:02d}_P{i:04d}_20240501080000_{i + 1:04d}.mp4", "wb") as f:
            left = size
            while left > 0:
                n = min(block, left)
                f.write(os.urandom(n))
                left -= n
    old = time.time() - 60
    for path in folder.iterdir():
        os.utime(path, (old, old))
    return count * size


def _db_env(home: Path, db_url: str | None) -> dict[str, str]:
    return {"BWC_DATABASE_URL": db_url} if db_url else {}


def _fresh_pg(db_url: str, name: str) -> str:
    """A new database beside ``db_url``'s (PostgreSQL) for one home."""
    import sqlalchemy as sa

    admin = sa.create_engine(db_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return sa.engine.make_url(db_url).set(database=name).render_as_string(hide_password=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=8, help="files per set (four stations: a quarter each)")
    parser.add_argument("--mib", type=int, default=64, help="size of each file")
    parser.add_argument("--resume-gib", type=float, default=1.0, help="size of the file killed mid-upload")
    parser.add_argument("--db-url", default=None, help="a PostgreSQL URL to run on (default: SQLite in each home)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bwc-bench-push-"))
    tag = str(os.getpid())
    server_home, local_home = work / "server", work / "local"
    server_db = _fresh_pg(args.db_url, f"bwc_push_srv_{tag}") if args.db_url else None
    local_db = _fresh_pg(args.db_url, f"bwc_push_local_{tag}") if args.db_url else None
    server_env = _env(server_home, **_db_env(server_home, server_db))
    local_env = _env(local_home, **_db_env(local_home, local_db))
    proc: subprocess.Popen[bytes] | None = None
    results: dict[str, Any] = {
        "files": args.files,
        "file_mib": args.mib,
        "db": "postgresql" if args.db_url else "sqlite",
    }
    try:
        size = args.mib * MIB
        print(f"making 3 × {args.files} files of {args.mib} MiB in {work} …", flush=True)
        total = _files(work / "set-local", args.files, size, "L")
        _files(work / "set-one", args.files, size, "O")
        per = max(1, args.files // 4)
        for s in range(4):
            _files(work / f"set-four-{s}", per, size, f"F{s}")
        four_total = 4 * per * size

        _run(["init"], server_env)
        _run(["init"], local_env)
        tokens = [
            _run(["token", "create", "--role", "station", "--name", f"st{i}", "--station", f"ST{i}"], server_env)
            .strip()
            .splitlines()[0]
            for i in range(5)
        ]
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        log = open(work / "server.log", "wb")
        proc = subprocess.Popen(
            [BWC, "run", "--host", "127.0.0.1", "--port", str(port)], env=server_env, stdout=log, stderr=log
        )
        _wait_healthy(base, proc)

        # Local baseline: the same number of bytes through the local pipeline, in this run.
        local_files = sorted(str(p) for p in (work / "set-local").iterdir())
        t0, c0 = time.perf_counter(), _cpu(None)
        _run(["ingest", *local_files, "--station", "LOCAL"], local_env)
        local_s, local_cpu = time.perf_counter() - t0, _cpu(None) - c0

        # One station pushing the whole set.
        t0, c0 = time.perf_counter(), _cpu(proc.pid)
        _push(work / "set-one", work / "station-one", base, tokens[0], "ST0")
        one_s, one_cpu = time.perf_counter() - t0, _cpu(proc.pid) - c0

        # Four stations at once, a quarter of the bytes each.
        t0, c0 = time.perf_counter(), _cpu(proc.pid)
        procs = [
            _push_start(work / f"set-four-{s}", work / f"station-four-{s}", base, tokens[s + 1], f"ST{s + 1}")
            for s in range(4)
        ]
        for p in procs:
            if p.wait() != 0:
                raise SystemExit("a station failed")
        four_s, four_cpu = time.perf_counter() - t0, _cpu(proc.pid) - c0

        results |= {
            # CPU seconds per MiB (every process of the path: server and stations, or bwc ingest): what the
            # path costs whatever else the machine runs, beside the wall-clock rates the targets speak of.
            "local_cpu_s_per_mib": local_cpu / (total / MIB),
            "push_one_cpu_s_per_mib": one_cpu / (total / MIB),
            "push_four_cpu_s_per_mib": four_cpu / (four_total / MIB),
            "load_average": os.getloadavg(),
            "local_ingest_mib_s": total / MIB / local_s,
            "push_one_station_mib_s": total / MIB / one_s,
            "push_four_stations_mib_s": four_total / MIB / four_s,
        }
        results["push_one_vs_local"] = results["push_one_station_mib_s"] / results["local_ingest_mib_s"]
        results["push_four_vs_local"] = results["push_four_stations_mib_s"] / results["local_ingest_mib_s"]
        results |= _resumed(work, base, tokens[0], args.resume_gib)
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    _print(results)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "api_push.json").write_text(json.dumps(results, indent=2))


def _cpu(server_pid: int | None) -> float:
    """CPU seconds used so far by this run's finished children, plus the running server's (from /proc)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = children.ru_utime + children.ru_stime
    if server_pid is None:
        return used
    fields = Path(f"/proc/{server_pid}/stat").read_text().rsplit(")", 1)[1].split()
    return used + (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_healthy(base: str, proc: subprocess.Popen[bytes]) -> None:
    end = time.monotonic() + 120
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit("bwc run exited")
        try:
            if httpx2.get(f"{base}/api/v1/healthz", timeout=5).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("bwc run did not become healthy")


def _push_start(folder: Path, home: Path, base: str, token: str, station: str, **env: str) -> subprocess.Popen[bytes]:
    args = [BWC, "watch", str(folder), "--server", base, "--station", station, "--once"]
    return subprocess.Popen(
        args, env=_env(home, BWC_TOKEN=token, **env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _push(folder: Path, home: Path, base: str, token: str, station: str) -> None:
    if _push_start(folder, home, base, token, station).wait() != 0:
        raise SystemExit(f"station {station} failed")


def _resumed(work: Path, base: str, token: str, gib: float) -> dict[str, Any]:
    """Kill a station halfway through a large upload, restart it, and count what the restart sent."""
    size = int(gib * 1024 * MIB)
    folder, home = work / "set-resume", work / "station-resume"
    folder.mkdir()
    _files(folder, 1, size, "R")
    relpath = next(folder.iterdir()).name
    chunk = 8 * MIB
    proc = _push_start(folder, home, base, token, "ST0", BWC_PUSH_CHUNK_MB=str(chunk // MIB))
    queue_file = queue_path(home)
    acked = 0
    while proc.poll() is None:
        item = PushQueue(queue_file).get(relpath) if queue_file.exists() else None
        if item is not None and item.offset >= size // 2:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            acked = item.offset
            break
        time.sleep(0.02)
    else:
        raise SystemExit("the resume upload finished before it could be interrupted: use a larger --resume-gib")
    before = PushQueue(queue_file).get(relpath)
    assert before is not None
    sent_before = before.bytes_sent
    _push(folder, home, base, token, "ST0")
    after = PushQueue(queue_file).get(relpath)
    assert after is not None and after.state == "done" and after.resumed_from is not None
    sent_after = after.bytes_sent - sent_before
    return {
        "resume_file_bytes": size,
        "resume_chunk_bytes": chunk,
        "resume_acked_at_kill": acked,
        "resume_server_offset_at_restart": after.resumed_from,
        "resume_bytes_sent_after_restart": sent_after,
        # What may have crossed the wire twice: the chunk in flight at the kill, minus what the server kept of it.
        "resume_resent_at_most": max(0, chunk - (after.resumed_from - acked)),
    }


def _print(r: dict[str, Any]) -> None:
    one, four = r["push_one_station_mib_s"], r["push_four_stations_mib_s"]
    print(f"\nstation push benchmark ({r['files']} files × {r['file_mib']} MiB per set, {r['db']})")
    print(f"  local bwc ingest           {r['local_ingest_mib_s']:8.1f} MiB/s")
    print(f"  push, one station          {one:8.1f} MiB/s   ({r['push_one_vs_local']:.2f} × local)")
    print(f"  push, four stations        {four:8.1f} MiB/s   ({r['push_four_vs_local']:.2f} × local)")
    local_cpu, one_cpu, four_cpu = (
        r[k] * 1000 for k in ("local_cpu_s_per_mib", "push_one_cpu_s_per_mib", "push_four_cpu_s_per_mib")
    )
    print(
        f"  CPU per MiB, all processes: local {local_cpu:.1f} ms; one station {one_cpu:.1f} ms"
        f" ({one_cpu / local_cpu:.2f} × local); four stations {four_cpu:.1f} ms ({four_cpu / local_cpu:.2f} × local)"
    )
    print("  load average: " + " ".join(f"{x:.1f}" for x in r["load_average"]) + f" on {os.cpu_count()} cores")
    gib, acked = r["resume_file_bytes"] / 2**30, r["resume_acked_at_kill"] / MIB
    server, after = r["resume_server_offset_at_restart"] / MIB, r["resume_bytes_sent_after_restart"] / MIB
    resent, chunk = r["resume_resent_at_most"] / MIB, r["resume_chunk_bytes"] / MIB
    print(
        f"  resumed {gib:.2f} GiB upload: killed at {acked:.0f} MiB acknowledged; resumed from the server's"
        f" {server:.1f} MiB; sent after restart {after:.1f} MiB; re-sent at most {resent:.1f} MiB"
        f" (one chunk = {chunk:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
