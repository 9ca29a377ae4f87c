"""Where Ceph RGW's CPU goes for one upload (not a test): radosgw, ceph-osd and ceph-mon apart, user and system.

``bench.ingest`` charges each S3 upload with the gateway's CPU as one figure; this splits it, so that a gap
between ``bwc ingest`` and ``aws s3 cp`` can be put on the process (and the kind of time) that pays it: the
frontend and its SHA-256 check (radosgw), the memstore OSD's copies into memory (ceph-osd, mostly kernel time),
or the monitor. Each contender gets a gateway of its own, started empty (the OSD's cost grows as it fills), the
contenders alternate, and the files are the same for both (any bytes: the gateway never looks inside them).

    .venv/bin/python -m bench.rgw_split FILE [FILE ...] [--runs 3] [--dirty-mib 0] [--first aws|bwc]

Files must have names ``bwc`` ingests as media (``DSJ-L000_P0000_20240501080000_0001.mp4``) and distinct
contents (``bwc`` skips bytes it already stored). ``--dirty-mib`` writes that much to the page cache before
each gateway starts, as ``bench.ingest``'s local phase does just before its RGW phase.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.ingest import BIN, byte_compile, env_for, start_rgw, stop_rgw

TICK = os.sysconf("SC_CLK_TCK")
DAEMONS = {"client.rgw.a": "rgw", "osd.0": "osd", "mon.a": "mon"}


def user_sys(pid: int) -> tuple[float, float]:
    """User and system CPU seconds a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


def by_thread(pid: int) -> dict[str, float]:
    """CPU seconds of a process by thread name (Ceph names its pools: ``tp_osd_tp``, ``msgr-worker-N``, …)."""
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            raw = (task / "stat").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw.rsplit(")", 1)[1].split()
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / TICK
    return out


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def contender_commands(mode: str, work: Path, rgw: dict[str, str]) -> tuple[list[str], list[str], dict[str, str]]:
    """The upload command (before and after the file) and its environment, after the bucket or home is made."""
    if mode == "aws":
        env = env_for(work, None)
        env.update(AWS_ACCESS_KEY_ID=rgw["AWS_ACCESS_KEY_ID"], AWS_SECRET_ACCESS_KEY=rgw["AWS_SECRET_ACCESS_KEY"])
        aws = [str(BIN / "aws"), "--endpoint-url", rgw["AWS_ENDPOINT_URL"], "s3"]
        subprocess.run([*aws, "mb", "s3://awscp"], env=env, check=True, stdout=subprocess.DEVNULL)
        return [*aws, "cp", "--only-show-errors"], ["s3://awscp/x"], env
    url = (
        f"s3://bench?endpoint_url={rgw['AWS_ENDPOINT_URL']}&region=us-east-1&addressing_style=path"
        f"&aws_access_key_id={rgw['AWS_ACCESS_KEY_ID']}&aws_secret_access_key={rgw['AWS_SECRET_ACCESS_KEY']}"
    )
    env = env_for(work / "home", url)
    subprocess.run([str(BIN / "bwc"), "init"], env=env, check=True, stdout=subprocess.DEVNULL)
    return [str(BIN / "bwc"), "ingest"], [], env


def one_run(mode: str, files: list[Path], dirty_mib: int) -> dict[str, Any]:
    """Every file uploaded by ``mode`` to a fresh gateway; CPU per file and process, and by thread in all."""
    with tempfile.TemporaryDirectory(prefix="bwc-rgw-split-") as tmp:
        work = Path(tmp)
        if dirty_mib:
            subprocess.run(
                ["dd", "if=/dev/zero", f"of={work / 'dirty'}", "bs=1M", f"count={dirty_mib}", "status=none"],
                check=True,
            )
        rgw_env, rgw = start_rgw(work, store_bytes=sum(f.stat().st_size for f in files) + 2**30)
        try:
            run_dir = Path(rgw_env["RGW_DIR"]) / "run"
            pids = {short: int((run_dir / f"{name}.pid").read_text()) for name, short in DAEMONS.items()}
            head, tail, env = contender_commands(mode, work, rgw)
            threads_before = {n: by_thread(p) for n, p in pids.items()}
            rows = []
            for f in files:
                client, daemons = children_cpu(), {n: user_sys(p) for n, p in pids.items()}
                proc = subprocess.run([*head, str(f), *tail], env=env, capture_output=True)
                if proc.returncode != 0:
                    raise SystemExit(f"{mode} of {f.name} failed: {proc.stderr.decode(errors='replace')[-2000:]}")
                row: dict[str, Any] = {"file": f.name, "client": round(children_cpu() - client, 2)}
                for n, p in pids.items():
                    user, sys_ = user_sys(p)
                    row[n] = [round(user - daemons[n][0], 2), round(sys_ - daemons[n][1], 2)]
                rows.append(row)
            threads = {}
            for n, p in pids.items():
                after, before = by_thread(p), threads_before[n]
                spent = {k: round(v - before.get(k, 0.0), 2) for k, v in after.items()}
                threads[n] = {k: v for k, v in sorted(spent.items(), key=lambda kv: -kv[1]) if v >= 0.1}
        finally:
            stop_rgw(rgw_env)
    return {"mode": mode, "load": round(os.getloadavg()[0], 1), "files": rows, "threads": threads}


def summary(run: dict[str, Any]) -> str:
    rows = run["files"]
    parts = [f"client {sum(r['client'] for r in rows):5.2f}"]
    for n in DAEMONS.values():
        user, sys_ = sum(r[n][0] for r in rows), sum(r[n][1] for r in rows)
        parts.append(f"{n} {user + sys_:5.2f} ({user:.2f} u + {sys_:.2f} s)")
    return f"{run['mode']:4} load {run['load']:4.1f}  " + "  ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dirty-mib", type=int, default=0)
    parser.add_argument("--first", choices=("aws", "bwc"), default="aws", help="which contender starts each pair")
    args = parser.parse_args()
    byte_compile()
    runs = []
    for _ in range(args.runs):
        for mode in ("aws", "bwc") if args.first == "aws" else ("bwc", "aws"):
            run = one_run(mode, [f.resolve() for f in args.files], args.dirty_mib)
            print(summary(run), flush=True)
            runs.append(run)
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "rgw_split.json").write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
