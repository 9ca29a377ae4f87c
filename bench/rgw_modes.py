"""One signed PutObject against parts signed from the hash pass, on Ceph RGW (not a test): wall and CPU by mode.

Each contender gets a fresh gateway (as in ``bench.ingest``); ``bwc ingest`` runs a process per file; the modes
are the same code with the store's bench knobs set (``BWC_SIGNED_PART_MIB``, ``BWC_SIGNED_IN_FLIGHT``,
``BWC_SIGNED_PARTS_FROM_MIB``; ``single`` puts the threshold out of reach: one PutObject). Files must have names
``bwc`` ingests as media and distinct contents, e.g. 2 GiB and two 256 MiB of ``/dev/urandom``.

    .venv/bin/python -m bench.rgw_modes FILE [FILE ...] [--rounds 2] [--modes aws single p64x3 p32x4]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from bench.ingest import CPU, byte_compile, run_measured, start_rgw, stop_rgw
from bench.rgw_split import contender_commands

MODES: dict[str, dict[str, str]] = {
    "aws": {},
    "single": {"BWC_SIGNED_PARTS_FROM_MIB": "1000000"},
    "p128x2": {"BWC_SIGNED_PART_MIB": "128", "BWC_SIGNED_IN_FLIGHT": "2"},
    "p64x3": {"BWC_SIGNED_PART_MIB": "64", "BWC_SIGNED_IN_FLIGHT": "3"},
    "p64x2": {"BWC_SIGNED_PART_MIB": "64", "BWC_SIGNED_IN_FLIGHT": "2"},
    "p32x4": {"BWC_SIGNED_PART_MIB": "32", "BWC_SIGNED_IN_FLIGHT": "4"},
    "p16x4": {"BWC_SIGNED_PART_MIB": "16", "BWC_SIGNED_IN_FLIGHT": "4"},
}


def one_run(mode: str, files: list[Path]) -> dict[str, object]:
    """Every file by ``mode`` to a fresh gateway: walls summed, CPU of the clients and of radosgw + OSD."""
    with tempfile.TemporaryDirectory(prefix="bwc-rgw-modes-") as tmp:
        work = Path(tmp)
        rgw_env, rgw = start_rgw(work, store_bytes=sum(f.stat().st_size for f in files) + 2**30)
        try:
            head, tail, env = contender_commands("aws" if mode == "aws" else "bwc", work, rgw)
            env.update(MODES[mode])
            load = os.getloadavg()[0]
            wall = client = server = 0.0
            rss = 0
            for f in files:
                seconds, peak = run_measured([*head, str(f), *tail], env)
                wall, client, server = wall + seconds, client + CPU["client"], server + CPU["server"]
                rss = max(rss, peak)
        finally:
            stop_rgw(rgw_env)
    return {
        "mode": mode,
        "load": round(load, 1),
        "wall": round(wall, 2),
        "client": round(client, 2),
        "server": round(server, 2),
        "peak_rss_mib": round(rss / 2**20),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--modes", nargs="+", choices=sorted(MODES), default=["aws", "single", "p64x3", "p32x4"])
    args = parser.parse_args()
    byte_compile()
    runs = []
    for _ in range(args.rounds):
        for mode in args.modes:
            run = one_run(mode, [f.resolve() for f in args.files])
            print(json.dumps(run), flush=True)
            runs.append(run)
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "rgw_modes.json").write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    main()
