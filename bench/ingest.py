"""Ingest benchmark (not a test): throughput, files/s, peak memory and watcher latency.

Makes real media files with ffmpeg (large ones by looping a clip with ``-c copy``), ingests them into the
local store and into S3 — moto's standalone server and a real Ceph RADOS Gateway, both on loopback — through
the ``bwc`` command, and measures in the same run, on the same files, the baselines: ``openssl dgst -sha256``
(this CPU's hashing limit), ``sha256sum``, ``dd conv=fsync`` (this disk's write limit) and ``aws s3 cp`` to the
same endpoint. Prints a table and the ratios; writes ``bench/out/ingest.json``.

    .venv/bin/python -m bench.ingest [--large-gib 2] [--small 200] [--no-rgw] [--no-moto] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
OUT = ROOT / "bench" / "out"
RGW_SCRIPT = ROOT / "tests" / "fixtures" / "ceph_rgw.sh"


CPU: dict[str, float] = {}  # CPU seconds of the last run_measured: the child (with its own children) and the gateway
SERVER_PIDS: list[int] = []  # radosgw and ceph-osd while RGW runs: their CPU is part of every S3 upload's cost


def server_cpu() -> float:
    """CPU seconds radosgw and the OSD have used so far (from /proc), 0 where RGW is not running."""
    total = 0.0
    for pid in SERVER_PIDS:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def run_measured(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one child process; its CPU and the gateway's go to ``CPU``."""
    server_start = server_cpu()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    CPU["client"] = usage.ru_utime + usage.ru_stime
    CPU["server"] = server_cpu() - server_start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise SystemExit(f"{' '.join(cmd[:3])}… failed ({proc.returncode}): {err[-2000:]}")
    return elapsed, usage.ru_maxrss * 1024


def byte_compile() -> None:
    """Compile the project's modules once, as ``pip install`` does for an installed package.

    ``make setup`` installs the project in editable mode, which writes no bytecode; where the environment sets
    ``PYTHONDONTWRITEBYTECODE`` (as this shared machine does) every ``bwc`` process would then compile all of
    its own modules again (measured: ~0.35 s of CPU a process), a cost no installed ``bwc`` pays and ``aws``,
    installed with bytecode, never pays either. Compiling is idempotent and skips what is up to date.
    """
    sources = [str(ROOT / d) for d in ("api", "audit", "config", "ingest", "storage")]
    subprocess.run([sys.executable, "-m", "compileall", "-q", *sources], check=True, stdout=subprocess.DEVNULL)


def make_media(work: Path, large_gib: float, small: int) -> tuple[list[Path], list[Path]]:
    clip = work / "clip.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=1280x720:rate=25:duration=20",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=20",
            "-c:v",
            "mpeg4",
            "-q:v",
            "1",
            "-c:a",
            "aac",
            str(clip),
        ],
        check=True,
    )
    large_dir, small_dir = work / "large", work / "small"
    large_dir.mkdir()
    small_dir.mkdir()
    large = []
    sizes = [large_gib * 2**30] + [256 * 2**20] * 2
    for i, size in enumerate(sizes):
        dest = large_dir / f"DSJ-L{i:03d}_P{i:04d}_20240501{8 + i:02d}0000_0001.mp4"
        subprocess.run(
            [
                "ffmpeg",
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-stream_loop",
                "-1",
                "-i",
                str(clip),
                "-c",
                "copy",
                "-fs",
                str(int(size)),
                "-metadata",
                f"title=large {i}",
                str(dest),
            ],
            check=True,
        )
        large.append(dest)
    short = work / "short.mp4"
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(clip), "-t", "2", "-c", "copy", str(short)],
        check=True,
    )
    smalls = []
    for i in range(small):
        dest = (
            small_dir
            / f"DSJ-S{i % 20:03d}"
            / f"DSJ-S{i % 20:03d}_P0001_20240502{i // 60 % 24:02d}{i % 60:02d}00_{i:04d}.mp4"
        )
        dest.parent.mkdir(exist_ok=True)
        subprocess.run(
            [
                "ffmpeg",
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-i",
                str(short),
                "-c",
                "copy",
                "-metadata",
                f"title=small {i}",
                str(dest),
            ],
            check=True,
        )
        smalls.append(dest)
    return large, smalls


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, endpoint
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("moto server did not start")


def start_rgw(work: Path, store_bytes: int) -> tuple[dict[str, str], dict[str, str]]:
    """Start Ceph RGW with the tests' own script; (its script environment, its s3.env values).

    Its radosgw and OSD become ``SERVER_PIDS``, whose CPU every S3 upload is charged with.
    """
    env = {
        **os.environ,
        "RGW_DIR": f"/tmp/bwc-bench-rgw-{os.getpid()}",
        "RGW_PORT": str(free_port()),
        "TLS_PORT": str(free_port()),
        "MON_PORT": str(free_port()),
        "STORE_BYTES": str(store_bytes),
    }
    subprocess.run(["bash", str(RGW_SCRIPT), "start"], env=env, check=True, capture_output=True, timeout=300)
    values = dict(line.split("=", 1) for line in (Path(env["RGW_DIR"]) / "s3.env").read_text().splitlines())
    run_dir = Path(env["RGW_DIR"]) / "run"
    SERVER_PIDS[:] = [int((run_dir / f"{n}.pid").read_text()) for n in ("client.rgw.a", "osd.0")]
    return env, values


def stop_rgw(env: dict[str, str]) -> None:
    subprocess.run(["bash", str(RGW_SCRIPT), "stop"], env=env, capture_output=True, timeout=120)
    SERVER_PIDS.clear()


def env_for(home: Path, storage_url: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "BWC_HOME": str(home),
            "BWC_STABLE_SECONDS": "0",
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    env.pop("BWC_DATABASE_URL", None)
    env.pop("BWC_CONFIG", None)
    if storage_url:
        env["BWC_STORAGE_URL"] = storage_url
    else:
        env.pop("BWC_STORAGE_URL", None)
    return env


def recordings_count(home: Path) -> int:
    with sqlite3.connect(home / "bwc.db") as conn:
        return int(conn.execute("SELECT count(*) FROM recordings").fetchone()[0])


def bench_backend(
    name: str, work: Path, large: list[Path], smalls: list[Path], storage_url: str | None
) -> dict[str, Any]:
    home = work / f"home-{name}"
    env = env_for(home, storage_url)
    subprocess.run([str(BIN / "bwc"), "init"], env=env, check=True, stdout=subprocess.DEVNULL)
    result: dict[str, Any] = {"large": []}
    for f in large:
        secs, rss = run_measured([str(BIN / "bwc"), "ingest", str(f)], env)
        size = f.stat().st_size
        result["large"].append(
            {
                "file": f.name,
                "bytes": size,
                "seconds": secs,
                "mb_s": size / secs / 1e6,
                "peak_rss_mib": rss / 2**20,
                "client_cpu_s": CPU["client"],
                "server_cpu_s": CPU["server"],
            }
        )
    small_dir = smalls[0].parent.parent
    secs, rss = run_measured([str(BIN / "bwc"), "watch", str(small_dir), "--once", "--station", "bench"], env)
    result["small"] = {
        "files": len(smalls),
        "seconds": secs,
        "files_s": len(smalls) / secs,
        "peak_rss_mib": rss / 2**20,
    }
    result["recordings"] = recordings_count(home)
    return result


def bench_one_process(name: str, work: Path, large: list[Path], storage_url: str | None) -> dict[str, Any]:
    """All the large files in ONE ``bwc ingest f1 f2 f3`` (a fresh home, so nothing is a duplicate).

    This is the ingest's own throughput, as ``bwc run``'s watcher ingests (one resident process): per file, a
    ``bwc`` process first spends ~0.5 s of CPU importing Python libraries before it copies a byte (measured by
    ``bench.local_breakdown``), which is a third of a 256 MiB file's time against ``dd``, whose start-up is
    nothing. Both forms are printed; neither hides the other."""
    home = work / f"home-{name}-one-process"
    env = env_for(home, storage_url)
    subprocess.run([str(BIN / "bwc"), "init"], env=env, check=True, stdout=subprocess.DEVNULL)
    secs, rss = run_measured([str(BIN / "bwc"), "ingest", *map(str, large)], env)
    size = sum(f.stat().st_size for f in large)
    return {"bytes": size, "seconds": secs, "mb_s": size / secs / 1e6, "peak_rss_mib": rss / 2**20}


def watcher_latency(work: Path, media_file: Path, stable_seconds: float) -> float:
    """Seconds from a file appearing in a watched inbox until its recording is committed."""
    home = work / "home-latency"
    env = env_for(home, None)
    env["BWC_STABLE_SECONDS"] = str(stable_seconds)
    subprocess.run([str(BIN / "bwc"), "init"], env=env, check=True, stdout=subprocess.DEVNULL)
    inbox = home / "inbox"
    proc = subprocess.Popen(
        [str(BIN / "bwc"), "watch", str(inbox)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        time.sleep(2)  # let the watcher start; a benchmark, not a test
        tmp = inbox / "DSJ-W001_P0001_20240503080000_0001.mp4.part"
        shutil.copyfile(media_file, tmp)
        start = time.perf_counter()
        tmp.rename(inbox / "DSJ-W001_P0001_20240503080000_0001.mp4")
        deadline = start + stable_seconds + 60
        while time.perf_counter() < deadline:
            if recordings_count(home) >= 1:
                return time.perf_counter() - start
            time.sleep(0.05)
        return float("nan")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


BASELINE_CPU: dict[str, float] = {}  # client and gateway CPU seconds of the last baseline(), over all its files


def baseline(cmd: list[str], files: list[Path], env: dict[str, str] | None = None) -> float:
    """MB/s of a baseline command over the files, one process per file (``{}`` in an argument is the file)."""
    total_bytes = sum(f.stat().st_size for f in files)
    total = 0.0
    BASELINE_CPU.update(client=0.0, server=0.0)
    for f in files:
        templated = any("{}" in c for c in cmd)
        secs, _ = run_measured([c.replace("{}", str(f)) for c in cmd] if templated else [*cmd, str(f)], env)
        total += secs
        BASELINE_CPU["client"] += CPU["client"]
        BASELINE_CPU["server"] += CPU["server"]
    return total_bytes / total / 1e6


def rgw_aws_cp(work: Path, rgw: dict[str, str], large: list[Path]) -> float:
    """``aws s3 cp`` of the same files to the same gateway: the tool an operator would pick instead."""
    env = env_for(work, None)
    env.update({"AWS_ACCESS_KEY_ID": rgw["AWS_ACCESS_KEY_ID"], "AWS_SECRET_ACCESS_KEY": rgw["AWS_SECRET_ACCESS_KEY"]})
    aws = [str(BIN / "aws"), "--endpoint-url", rgw["AWS_ENDPOINT_URL"], "s3"]
    subprocess.run([*aws, "mb", "s3://awscp"], env=env, check=True, stdout=subprocess.DEVNULL)
    return baseline([*aws, "cp", "--only-show-errors", "{}", "s3://awscp/x"], large, env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large-gib", type=float, default=2.0)
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--stable-seconds", type=float, default=5.0)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--no-rgw", action="store_true", help="skip Ceph RGW (where its packages are missing)")
    # moto answers 500 to CompleteMultipartUpload of 2 GiB under load (aws s3 cp then fails, measured): RGW alone
    parser.add_argument("--no-moto", action="store_true", help="skip moto (the S3 mock)")
    args = parser.parse_args()

    byte_compile()
    work = Path(tempfile.mkdtemp(prefix="bwc-bench-"))
    load_start = os.getloadavg()[0]
    moto, endpoint = (None, "") if args.no_moto else start_moto()
    rgw_env: dict[str, str] | None = None
    try:
        print(f"making media in {work} …", flush=True)
        large, smalls = make_media(work, args.large_gib, args.small)
        # Warm the page cache once so every contender reads from memory alike.
        for f in large:
            subprocess.run(["cat", str(f)], stdout=subprocess.DEVNULL, check=True)
        figures: dict[str, Any] = {}
        figures["openssl_mb_s"] = baseline(["openssl", "dgst", "-sha256"], large)
        figures["sha256sum_mb_s"] = baseline(["sha256sum"], large)
        # The local store's own ceiling: writing the bytes to this disk and syncing them, nothing else.
        figures["dd_fsync_mb_s"] = baseline(
            ["dd", "if={}", f"of={work / 'dd.out'}", "bs=1M", "conv=fsync", "status=none"], large
        )
        figures["local"] = bench_backend("local", work, large, smalls, None)
        figures["local_one_process"] = bench_one_process("local", work, large, None)
        # This disk's speed swings by ×3 within minutes: dd again right after, so the limit brackets bwc's runs.
        figures["dd_fsync_after_mb_s"] = baseline(
            ["dd", "if={}", f"of={work / 'dd.out'}", "bs=1M", "conv=fsync", "status=none"], large
        )
        if moto is not None:
            aws_env = env_for(work, None)
            subprocess.run(
                [str(BIN / "aws"), "--endpoint-url", endpoint, "s3", "mb", "s3://awscp"],
                env=aws_env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            aws_cp = [str(BIN / "aws"), "--endpoint-url", endpoint, "s3", "cp", "--only-show-errors"]
            figures["aws_s3_cp_mb_s"] = baseline([*aws_cp, "{}", "s3://awscp/x"], large, aws_env)
            moto_url = f"s3://bench?endpoint_url={endpoint}&region=us-east-1"
            figures["s3"] = bench_backend("s3", work, large, smalls, moto_url)
        if not args.no_rgw:
            # Each contender gets a gateway of its own, started empty: the memstore OSD's CPU a byte grows as it
            # fills (measured: the same 2 GiB PutObject cost the gateway 8.8 s into an empty store, 14.3 s into
            # one holding 4 GiB), so on one shared gateway whoever ran second paid ~1.2 s more (both orders tried).
            # memstore keeps objects in memory: room for one contender's objects.
            total = sum(f.stat().st_size for f in large + smalls)
            rgw_env, rgw = start_rgw(work, store_bytes=total + 2**30)
            figures["rgw_aws_s3_cp_mb_s"] = rgw_aws_cp(work, rgw, large)
            figures["rgw_aws_s3_cp_cpu_s"] = dict(BASELINE_CPU)
            stop_rgw(rgw_env)
            rgw_env, rgw = start_rgw(work, store_bytes=total + 2**30)
            url = (
                f"s3://bench?endpoint_url={rgw['AWS_ENDPOINT_URL']}&region=us-east-1&addressing_style=path"
                f"&aws_access_key_id={rgw['AWS_ACCESS_KEY_ID']}&aws_secret_access_key={rgw['AWS_SECRET_ACCESS_KEY']}"
            )
            figures["rgw"] = bench_backend("rgw", work, large, smalls, url)
        figures["watch_latency_s"] = watcher_latency(work, smalls[0], args.stable_seconds)
        figures["stable_seconds"] = args.stable_seconds
        figures["load_average"] = [load_start, os.getloadavg()[0]]  # the machine is shared: say how busy it was
    finally:
        if moto is not None:
            moto.terminate()
            moto.wait(timeout=30)
        if rgw_env is not None:
            stop_rgw(rgw_env)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(figures)


def report(f: dict[str, Any]) -> None:
    def mbs(backend: str) -> float:
        rows = f[backend]["large"]
        return float(sum(r["bytes"] for r in rows) / sum(r["seconds"] for r in rows) / 1e6)

    local = mbs("local")
    big_rss = {b: f[b]["large"][0]["peak_rss_mib"] for b in ("local", "s3", "rgw") if b in f}
    dd_runs = [f["dd_fsync_mb_s"], *([f["dd_fsync_after_mb_s"]] if "dd_fsync_after_mb_s" in f else [])]
    dd = sum(dd_runs) / len(dd_runs)
    limit = min(f["openssl_mb_s"], dd)
    lines = [
        f"openssl dgst -sha256      {f['openssl_mb_s']:9.1f} MB/s",
        f"sha256sum                 {f['sha256sum_mb_s']:9.1f} MB/s",
        f"dd bs=1M conv=fsync       {dd:9.1f} MB/s   (this disk's write ceiling; "
        + " before, ".join(f"{v:.1f}" for v in dd_runs)
        + (" after bwc's runs)" if len(dd_runs) > 1 else ")"),
        f"bwc ingest, local store   {local:9.1f} MB/s   a process per file: ratio to the slower of openssl and dd "
        f"{local / limit:.2f}; to openssl {local / f['openssl_mb_s']:.2f}, to dd {local / dd:.2f}",
    ]
    if "local_one_process" in f:
        one = f["local_one_process"]["mb_s"]
        lines.append(
            f"bwc ingest f1 f2 f3, local {one:8.1f} MB/s   one process (as bwc run's watcher): ratio to the slower "
            f"of openssl and dd {one / limit:.2f} (target ≥ 0.8)"
        )
    after_local = len(lines)
    lines += [
        "peak RSS, largest file    " + ", ".join(f"{b} {v:.0f} MiB" for b, v in big_rss.items()) + " (target < 200)",
        f"small files               local {f['local']['small']['files_s']:.1f} files/s"
        + "".join(f", {b} {f[b]['small']['files_s']:.1f} files/s" for b in ("s3", "rgw") if b in f)
        + " (target ≥ 10)",
        f"watched inbox latency     {f['watch_latency_s']:.2f} s with stable_seconds={f['stable_seconds']} "
        f"(target ≤ stable_seconds + 2)",
    ]
    if "s3" in f:
        s3 = mbs("s3")
        lines[after_local:after_local] = [
            f"aws s3 cp (moto)          {f['aws_s3_cp_mb_s']:9.1f} MB/s",
            f"bwc ingest, S3 (moto)     {s3:9.1f} MB/s   ratio to aws s3 cp "
            f"{s3 / f['aws_s3_cp_mb_s']:.2f} (target ≥ 1.0)",
        ]
    if "rgw" in f:
        rgw = mbs("rgw")
        lines[-3:-3] = [
            f"aws s3 cp (Ceph RGW)      {f['rgw_aws_s3_cp_mb_s']:9.1f} MB/s",
            f"bwc ingest, S3 (Ceph RGW) {rgw:9.1f} MB/s   ratio to aws s3 cp "
            f"{rgw / f['rgw_aws_s3_cp_mb_s']:.2f} (target ≥ 1.0)",
        ]
        if "rgw_aws_s3_cp_cpu_s" in f:
            # On a busy shared machine the wall ratio follows the load; CPU seconds (client + gateway) do not.
            aws_cpu = f["rgw_aws_s3_cp_cpu_s"]
            ours = {k: sum(r[f"{k}_cpu_s"] for r in f["rgw"]["large"]) for k in ("client", "server")}
            aws_total, ours_total = aws_cpu["client"] + aws_cpu["server"], ours["client"] + ours["server"]
            lines.insert(
                -3,
                f"CPU seconds, same files   aws s3 cp {aws_cpu['client']:.1f} + gateway {aws_cpu['server']:.1f}; "
                f"bwc ingest {ours['client']:.1f} + gateway {ours['server']:.1f}; "
                f"ratio aws/bwc {aws_total / ours_total:.2f}",
            )
    if "load_average" in f:
        lines.append(
            f"load average              {f['load_average'][0]:.1f} at start, {f['load_average'][1]:.1f} at end"
        )
    print("\n".join(lines))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "ingest.json").write_text(json.dumps(f, indent=2))


if __name__ == "__main__":
    main()
