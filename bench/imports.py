"""CSV import benchmark (not a test): a city's year of enforcement actions into fresh SQLite and PostgreSQL.

Generates a realistic CSV (20 units, 2,000 officers, 3,000 devices; 1–3 officers and 2–3 devices an action,
Chinese unit names and places) and imports it the way ``bwc actions import`` does (committed batch by batch),
each size and backend in a child process so that its peak RSS is its own. Prints rows/s beside the target
(3,300 rows/s: 100,000 rows in 30 s) and beside the machine's own limit (the same rows, as plain text, loaded
into a bare table with ``COPY`` on PostgreSQL and executemany on SQLite), the time of a second run of the same
file (every row unchanged), peak RSS at each size (flat memory: the same at every size) and the load average
(other work on the machine slows every figure). Writes ``bench/out/imports.json``.

    .venv/bin/python -m bench.imports [--sizes 25000,100000] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from audit.imports import BatchDone, ImportReport, import_actions
from bench.coverage import database, drop
from config.settings import Settings
from storage.migrate import upgrade
from storage.models import Action, AuditEvent
from storage.runtime import Runtime, build_runtime

OUT = Path(__file__).resolve().parent / "out"
TARGET_ROWS_PER_S = 3300
HEADER = ("action_id", "case_number", "unit", "started_at", "ended_at", "officers", "devices", "location", "kind")
PLACES = ("人民路", "解放大道", "中山北路", "滨江路", "东风市场", "火车站广场", "建设街", "和平里小区")
KINDS = ("占道经营", "违章搭建", "乱堆乱放", "户外广告", "噪声扰民", "渣土运输")


def write_csv(path: Path, rows: int, seed: int = 5) -> None:
    """One action a row, streamed to ``path``; devices and officers drawn from their unit's own pool."""
    rng = random.Random(seed)
    start_of_year = datetime(2024, 1, 1, tzinfo=UTC)
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(HEADER)
        for n in range(rows):
            unit = rng.randrange(20)
            start = start_of_year + timedelta(seconds=rng.randrange(365 * 86400))
            end = start + timedelta(minutes=rng.randint(10, 90))
            officers = rng.sample(range(unit * 100, unit * 100 + 100), rng.choice((1, 2, 2, 3)))
            devices = rng.sample(range(unit * 150, unit * 150 + 150), rng.choice((2, 2, 3)))
            out.writerow(
                (
                    f"XZ{2024}{n:08d}",
                    f"城管罚字〔2024〕{n // 3:06d}号",
                    f"城管{unit + 1}中队",
                    start.strftime("%Y-%m-%d %H:%M:%S"),
                    end.strftime("%Y-%m-%d %H:%M:%S"),
                    ";".join(f"P{o:05d}" for o in officers),
                    ";".join(f"DSJ-{d:05d}" for d in devices),
                    f"{rng.choice(PLACES)}{rng.randint(1, 300)}号",
                    rng.choice(KINDS),
                )
            )


def child(url: str, csv_path: Path, home: Path) -> dict[str, Any]:
    """In a fresh process: import, import again, load the bare table; figures as JSON."""
    settings = Settings(home=home, database_url=url)
    rt = build_runtime(settings)
    upgrade(rt.engine)
    figures: dict[str, Any] = {"rss_start_mb": _peak_rss_mb()}
    try:
        for key in ("import_s", "rerun_s"):
            figures[key], figures[key.replace("_s", "_linking_s")], report = timed_import(rt, csv_path)
            figures[key.replace("_s", "_report")] = {k: v for k, v in report.as_dict().items() if k != "errors"}
            figures[key.replace("_s", "_errors")] = len(report.errors)
        figures["rss_peak_mb"] = _peak_rss_mb()
        with rt.sessions() as session:
            figures["actions_stored"] = session.scalar(select(func.count()).select_from(Action))
            figures["events"] = session.scalar(select(func.count()).select_from(AuditEvent))
        figures["bare_s"] = bare_load(rt.engine, csv_path)
    finally:
        rt.close()
    return figures


def timed_import(rt: Runtime, csv_path: Path) -> tuple[float, float, ImportReport]:
    """As ``bwc actions import`` runs it: committed after every batch. Seconds in all, seconds in linking."""
    linking: list[float] = []
    t0 = time.perf_counter()
    with csv_path.open("rb") as f, rt.sessions() as session:

        def after_batch(done: BatchDone) -> None:
            session.commit()
            linking.append(done.linking_seconds)

        report = import_actions(session, rt.settings, f, "bench", csv_path.name, after_batch=after_batch)
        session.commit()
    return time.perf_counter() - t0, sum(linking), report


def bare_load(engine: Any, csv_path: Path) -> float:
    """The machine's own limit: the CSV's rows as plain text into a bare table, one transaction."""
    columns = ", ".join(f"{c} TEXT" for c in HEADER)
    t0 = time.perf_counter()
    with csv_path.open(encoding="utf-8", newline="") as f, engine.begin() as conn:
        rows = csv.reader(f)
        next(rows)
        conn.exec_driver_sql(f"CREATE TABLE bench_bare ({columns})")
        if engine.dialect.name == "postgresql":
            cursor = conn.connection.driver_connection.cursor()
            with cursor, cursor.copy(f"COPY bench_bare ({', '.join(HEADER)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" for _ in HEADER)
            conn.connection.driver_connection.executemany(f"INSERT INTO bench_bare VALUES ({marks})", rows)
    return time.perf_counter() - t0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_one(backend: str, rows: int, csv_path: Path, work: Path) -> dict[str, Any]:
    url = database(backend, work, f"{backend}_{rows}")
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.imports",
                "--child",
                url,
                str(csv_path),
                str(work / f"home-{backend}-{rows}"),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
    except subprocess.CalledProcessError as exc:
        sys.stderr.write(exc.stderr)
        raise
    finally:
        drop(url)
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["rows"] = rows
    figures["load_average_1m"] = os.getloadavg()[0]
    return figures


def report_line(backend: str, f: dict[str, Any]) -> str:
    rate = f["rows"] / f["import_s"]
    bare_rate = f["rows"] / f["bare_s"]
    without = f["rows"] / max(f["import_s"] - f["import_linking_s"], 1e-9)
    return (
        f"{backend:10} rows={f['rows']:>7} import={f['import_s']:6.1f}s {rate:7,.0f} rows/s "
        f"(×{rate / TARGET_ROWS_PER_S:.2f} of the 3,300 target; bare load {f['bare_s']:.1f}s {bare_rate:,.0f} rows/s, "
        f"import takes ×{f['import_s'] / f['bare_s']:.1f}; of which linking {f['import_linking_s']:.1f}s, "
        f"the rest {without:,.0f} rows/s) re-run={f['rerun_s']:5.1f}s "
        f"peak RSS={f['rss_peak_mb']:.0f} MB (start {f['rss_start_mb']:.0f}) "
        f"stored={f['actions_stored']} bad={f['import_errors']} load={f['load_average_1m']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="25000,100000", help="rows per run, comma-separated")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--child", nargs=3, metavar=("URL", "CSV", "HOME"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, csv_path, home = args.child
        print(json.dumps(child(url, Path(csv_path), Path(home))))
        return
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="bwc-bench-imp-") as tmp:
        work = Path(tmp)
        for rows in (int(s) for s in args.sizes.split(",")):
            csv_path = work / f"actions-{rows}.csv"
            write_csv(csv_path, rows)
            for backend in args.backends.split(","):
                figures = run_one(backend, rows, csv_path, work)
                results[f"{backend} {rows}"] = figures
                print(report_line(backend, figures), flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "imports.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
