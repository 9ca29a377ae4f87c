"""Time a one-month missing-recording report over 100k actions and 400k recordings (target: under 2 s).

Usage: python bench/report_missing.py DATABASE_URL [populate]  (populate an EMPTY database first)
"""

from __future__ import annotations

import random
import sys
import time
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import insert

from bwc.audit.reports import missing_report
from bwc.config.settings import Settings
from bwc.storage.db import make_engine, make_session_factory, transaction
from bwc.storage.migrate import upgrade
from bwc.storage.models import Action, ActionDevice, ActionRecording, Device, Recording, Unit

START = datetime(2024, 1, 1, tzinfo=UTC)
YEAR_S = 365 * 86400


def populate(url: str, n_actions: int = 100_000, n_recordings: int = 400_000) -> None:
    rnd = random.Random(1)
    engine = make_engine(url)
    upgrade(engine)
    with engine.begin() as c:
        c.execute(insert(Unit), [{"id": i, "code": f"U{i}"} for i in range(1, 21)])
        c.execute(
            insert(Device),
            [
                {
                    "id": i,
                    "serial": f"D{i:04d}",
                    "unit_id": 1 + i % 20,
                    "clock_offset_seconds": 0.0,
                    "created_at": START,
                }
                for i in range(1, 401)
            ],
        )
        recs = []
        per_device = n_recordings // 400
        rid = 0
        for d in range(1, 401):
            t = START
            for seq in range(per_device):
                rid += 1
                t = t + timedelta(seconds=rnd.randint(60, 2 * YEAR_S // per_device))
                if rnd.random() < 0.01:
                    continue
                recs.append(
                    {
                        "id": rid,
                        "sha256": f"{rid:064x}",
                        "size": 1,
                        "object_key": str(rid),
                        "device_id": d,
                        "original_name": f"f{rid}.mp4",
                        "sequence": seq,
                        "started_at": t,
                        "ended_at": t + timedelta(minutes=10),
                        "received_at": t + timedelta(hours=rnd.choice([1, 2, 30])),
                        "status": "ok",
                        "has_video": True,
                        "has_audio": True,
                        "legal_hold": False,
                    }
                )
        for i in range(0, len(recs), 20000):
            c.execute(insert(Recording), recs[i : i + 20000])
        acts, ads, ars = [], [], []
        for i in range(1, n_actions + 1):
            t = START + timedelta(seconds=rnd.randint(0, YEAR_S))
            v = rnd.choices(["complete", "pending", "incomplete"], [7, 1, 2])[0]
            acts.append(
                {
                    "id": i,
                    "action_id": f"A{i}",
                    "case_number": f"C{i // 3}",
                    "unit_id": 1 + i % 20,
                    "started_at": t,
                    "ended_at": t + timedelta(hours=1),
                    "verdict": v,
                    "reasons": [] if v == "complete" else [{"code": "shortfall"}],
                    "pending_until": t + timedelta(hours=25),
                    "created_at": t,
                    "updated_at": t,
                }
            )
            d1, d2 = rnd.sample(range(1, 401), 2)
            ads += [
                {"action_id": i, "device_id": d1, "source": "named"},
                {"action_id": i, "device_id": d2, "source": "named"},
            ]
            ars.append({"action_id": i, "recording_id": rnd.choice(recs)["id"], "manual": False, "linked_at": t})
        for rows, model in ((acts, Action), (ads, ActionDevice), (ars, ActionRecording)):
            for i in range(0, len(rows), 20000):
                c.execute(insert(model), rows[i : i + 20000])
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("ANALYZE")
    else:
        with engine.begin() as c:
            c.exec_driver_sql("ANALYZE")
    engine.dispose()


def run(url: str) -> float:
    settings = Settings(database_url=url, timezone="Asia/Shanghai")
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    best = 1e9
    for _ in range(3):
        t0 = time.perf_counter()
        with transaction(sessions) as s:
            report = missing_report(s, settings, date(2024, 5, 1), date(2024, 5, 31), None, datetime.now(UTC))
        best = min(best, time.perf_counter() - t0)
    print(
        f"{engine.dialect.name}: {len(report['actions'])} actions, {len(report['late_uploads'])} late, "
        f"{len(report['missing_files'])} holes, {len(report['unclaimed'])} unclaimed; best {best:.3f}s"
    )
    engine.dispose()
    return best


if __name__ == "__main__":
    url = sys.argv[1]
    if len(sys.argv) > 2 and sys.argv[2] == "populate":
        t0 = time.perf_counter()
        populate(url)
        print(f"populated in {time.perf_counter() - t0:.1f}s")
    run(url)
