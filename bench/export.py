"""Export benchmark (not a test): ``bwc export`` and ``bwc verify-package`` throughput and peak memory.

Ingests a case of large files (deterministic pseudo-random bytes: stored as unplayable evidence, which is all an
export needs) into the local store, then measures whole processes against baselines taken in the same run on the
same bytes: ``cp`` (read and write, what an export must do at least) and ``sha256sum`` (what a verification must
do at least). Peak RSS shows that memory stays flat whatever the case size. Writes ``bench/out/export.json``.

    .venv/bin/python -m bench.export [--gib 2] [--files 2] [--keep]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench.ingest import BIN, OUT, env_for, run_measured

CASE = "BENCH-CASE-1"
BLOCK = 8 * 1024 * 1024


def make_files(work: Path, gib: float, files: int) -> list[Path]:
    """``files`` files of ``gib / files`` GiB each, from one camera, back to back in time."""
    size = int(gib * 2**30 / files)
    made = []
    for i in range(files):
        # in the inbox under the device's folder, as a docking station leaves it
        path = work / "home" / "inbox" / "DEV-BENCH" / f"DEV-BENCH_P1_20240501{8 + i:02d}0000_{i + 1:04d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        block = hashlib.shake_256(f"bench-{i}".encode()).digest(BLOCK)
        with open(path, "wb") as f:
            written = 0
            while written < size:
                n = min(BLOCK, size - written)
                f.write(block[:n])
                f.write(written.to_bytes(8, "little"))  # no two blocks alike
                written += n + 8
        made.append(path)
    return made


def bwc(env: dict[str, str], *args: str) -> None:
    subprocess.run([str(BIN / "bwc"), *args], env=env, check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--gib", type=float, default=2.0, help="total size of the case's recordings")
    parser.add_argument("--files", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    opts = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bwc-bench-export-"))
    try:
        figures = run(work, opts.gib, opts.files)
    finally:
        if not opts.keep:
            shutil.rmtree(work, ignore_errors=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "export.json").write_text(json.dumps(figures, indent=2) + "\n")
    report(figures)


def run(work: Path, gib: float, files: int) -> dict[str, Any]:
    env = env_for(work / "home", None)
    media = make_files(work, gib, files)
    total = sum(p.stat().st_size for p in media)
    bwc(env, "init")
    bwc(env, "ingest", *map(str, media))
    csv = work / "actions.csv"
    csv.write_text(
        "action_id,case_number,unit,started_at,ended_at,officers,devices,location,kind\n"
        f"B-1,{CASE},U1,2024-05-01T08:00:00Z,2024-05-01T{8 + files:02d}:00:00Z,,DEV-BENCH,,bench\n"
    )
    bwc(env, "actions", "import", str(csv))
    out = work / "export.zip"
    export_s, export_rss = run_measured([str(BIN / "bwc"), "export", CASE, "--out", str(out)], env)
    verify_s, verify_rss = run_measured([str(BIN / "bwc"), "verify-package", str(out)], env)
    cp_s, _ = _cp(media, work, env)
    sha_s, _ = run_measured(["sha256sum", *map(str, media)], env)
    return {
        "bytes": total,
        "files": files,
        "export": {"seconds": export_s, "mb_s": total / export_s / 1e6, "peak_rss_mib": export_rss / 2**20},
        "verify": {"seconds": verify_s, "mb_s": total / verify_s / 1e6, "peak_rss_mib": verify_rss / 2**20},
        "cp_mb_s": total / cp_s / 1e6,
        "sha256sum_mb_s": total / sha_s / 1e6,
        "zip_bytes": out.stat().st_size,
    }


def _cp(media: list[Path], work: Path, env: dict[str, str]) -> tuple[float, int]:
    dest = work / "copies"
    dest.mkdir()
    return run_measured(["cp", *map(str, media), str(dest)], env)


def report(f: dict[str, Any]) -> None:
    gib = f["bytes"] / 2**30
    e, v = f["export"], f["verify"]
    print(f"case of {f['files']} files, {gib:.2f} GiB (ZIP {f['zip_bytes'] / 2**30:.2f} GiB)")
    print(
        f"bwc export          {e['mb_s']:7.1f} MB/s = {e['mb_s'] / f['cp_mb_s']:.2f} x cp ({f['cp_mb_s']:.1f} MB/s), "
        f"peak RSS {e['peak_rss_mib']:.0f} MiB"
    )
    print(
        f"bwc verify-package  {v['mb_s']:7.1f} MB/s = {v['mb_s'] / f['sha256sum_mb_s']:.2f} x sha256sum "
        f"({f['sha256sum_mb_s']:.1f} MB/s), peak RSS {v['peak_rss_mib']:.0f} MiB"
    )


if __name__ == "__main__":
    main()
