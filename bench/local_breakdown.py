"""Where one local ``bwc ingest`` of a large file spends its time (not a test): the parts measured apart.

Beside the bench's own baselines (``dd conv=fsync``, ``openssl dgst -sha256``) it measures, on the same file in
the same minutes: ``O_DIRECT`` writing and reading of this disk alone (``dd oflag=direct`` / ``iflag=direct``),
hashing in Python, ``LocalStore.put`` alone (write, read-back, compare, hash), ``ffprobe`` as ``probe`` runs it,
a ``bwc`` process's start-up (``bwc --help``, ``bwc ingest --help``) and what its imports cost in stages (the
interpreter alone; the CLI: Typer, Rich and pydantic-settings; SQLAlchemy's ORM with our models; all that ``bwc
ingest`` of a local store imports), and whole ``bwc ingest`` runs: of the file, of it again (a duplicate:
start-up, settings and the database, no copy) and of a 2-second clip. CPU seconds come from
``os.wait4`` (children) or ``getrusage`` (in this process), so they stay comparable on a busy machine.

    .venv/bin/python -m bench.local_breakdown [--large-gib 2]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.ingest import BIN, byte_compile, env_for, make_media
from ingest.probe import probe
from storage.local_store import LocalStore

# What a ``bwc ingest`` process imports before it copies a byte, cumulatively (each in a fresh interpreter).
IMPORT_STAGES = (
    ("python -c pass", "pass"),
    ("import the CLI (api.cli.main)", "import api.cli.main"),
    ("import sqlalchemy.orm, storage.models", "import sqlalchemy.orm, storage.models"),
    (
        "import all of bwc ingest (local)",
        "import api.cli.main, api.cli.cmd_ingest, ingest.pipeline, storage.local_store, storage.runtime",
    ),
)


def child(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Wall and CPU seconds of one child process (with its own children)."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd[:3])}… failed: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime


def here(fn: Callable[[], object], who: int = resource.RUSAGE_SELF) -> tuple[float, float]:
    """Wall and CPU seconds of ``fn`` run in this process (``who``: whose CPU counts)."""
    before, start = resource.getrusage(who), time.perf_counter()
    fn()
    after = resource.getrusage(who)
    return time.perf_counter() - start, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--large-gib", type=float, default=2.0)
    args = parser.parse_args()
    byte_compile()
    work = Path(tempfile.mkdtemp(prefix="bwc-breakdown-"))
    try:
        large, smalls = make_media(work, args.large_gib, 1)
        big, clip, out = large[0], smalls[0], work / "dd.out"
        size = big.stat().st_size
        subprocess.run(["cat", str(big)], stdout=subprocess.DEVNULL, check=True)  # the source from memory, as bench
        rows: list[tuple[str, tuple[float, float], bool]] = []
        dd = ["dd", f"if={big}", f"of={out}", "status=none"]
        rows.append(("dd bs=1M conv=fsync", child([*dd, "bs=1M", "conv=fsync"]), True))
        rows.append(("dd bs=8M oflag=direct conv=fsync", child([*dd, "bs=8M", "oflag=direct", "conv=fsync"]), True))
        rows.append(
            ("dd bs=8M iflag=direct (read)", child(["dd", f"if={out}", "of=/dev/null", "bs=8M", "iflag=direct"]), True)
        )
        rows.append(("openssl dgst -sha256", child(["openssl", "dgst", "-sha256", str(big)]), True))

        def python_hash() -> None:
            with big.open("rb") as f:
                hashlib.file_digest(f, "sha256")

        rows.append(("hashlib.file_digest", here(python_hash), True))
        store = LocalStore(f"file://{work / 'objects'}")
        store.ensure_ready()

        def put() -> None:
            with big.open("rb") as f:
                store.put(f)

        rows.append(("LocalStore.put", here(put), True))
        rows.append(("ffprobe (ingest.probe)", here(lambda: probe(big), resource.RUSAGE_CHILDREN), False))
        env = env_for(work / "home", None)
        subprocess.run([str(BIN / "bwc"), "init"], env=env, check=True, stdout=subprocess.DEVNULL)
        rows.append(("bwc --help (start-up)", child([str(BIN / "bwc"), "--help"], env), False))
        rows.append(("bwc ingest --help", child([str(BIN / "bwc"), "ingest", "--help"], env), False))
        for name, code in IMPORT_STAGES:
            rows.append((name, child([sys.executable, "-c", code], env), False))
        rows.append(("bwc ingest, the file", child([str(BIN / "bwc"), "ingest", str(big)], env), True))
        rows.append(("bwc ingest, it again (duplicate)", child([str(BIN / "bwc"), "ingest", str(big)], env), False))
        rows.append(("bwc ingest, a 2 s clip", child([str(BIN / "bwc"), "ingest", str(clip)], env), False))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{size / 2**20:.0f} MiB file, load average {os.getloadavg()[0]:.1f}")
    for name, (wall, cpu), rate in rows:
        print(f"{name:38s} wall {wall:6.2f} s  CPU {cpu:5.2f} s" + (f"  {size / wall / 1e6:7.1f} MB/s" if rate else ""))


if __name__ == "__main__":
    main()
