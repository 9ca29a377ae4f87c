"""Findings benchmark (not a test): what keeping findings adds to a full recompute, in the same run.

Two identical synthetic cities (``bench.coverage.populate``) per backend: one recomputed as the product does
(findings opened, closed and reopened in bulk per batch), one with the findings step switched off, as the
baseline. Each gets a first full recompute (every link and verdict made, every finding opened) and a second
(nothing to change); the runs alternate so that the machine's load falls on both. Prints the times, the ratio
(target: findings add < 10 %), the number of findings opened and the load average.

    .venv/bin/python -m bench.findings [--actions 20000] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from audit.linking import full, recompute_all
from bench.coverage import database, drop, populate
from config.settings import Settings
from storage.migrate import upgrade
from storage.models import Finding
from storage.runtime import Runtime, build_runtime

NOW = datetime(2025, 6, 1, tzinfo=UTC)


@contextmanager
def findings_off() -> Iterator[None]:
    # the baseline: the linking writer's one findings call site, replaced by nothing for this run only
    kept: Callable[..., Any] = getattr(full, "follow_verdicts")  # noqa: B009
    setattr(full, "follow_verdicts", lambda *_args, **_kw: 0)  # noqa: B010
    try:
        yield
    finally:
        setattr(full, "follow_verdicts", kept)  # noqa: B010


def timed(rt: Runtime, settings: Settings, off: bool) -> float:
    t0 = time.perf_counter()
    if off:
        with findings_off():
            recompute_all(rt.sessions, settings, NOW, "bench")
    else:
        recompute_all(rt.sessions, settings, NOW, "bench")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actions", type=int, default=20_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bwc-bench-findings-") as tmp:
        work = Path(tmp)
        for backend in args.backends.split(","):
            runtimes: dict[str, tuple[Runtime, Settings, str]] = {}
            try:
                for label in ("with", "without"):
                    url = database(backend, work, f"findings_{backend}_{label}")
                    settings = Settings(home=work / f"home-{backend}-{label}", database_url=url)
                    rt = build_runtime(settings)
                    runtimes[label] = (rt, settings, url)
                    upgrade(rt.engine)
                    populate(rt, args.actions)
                times: dict[str, list[float]] = {"with": [], "without": []}
                for order in (("without", "with"), ("with", "without")):  # first runs, then second runs
                    for label in order:
                        rt, settings, _url = runtimes[label]
                        times[label].append(timed(rt, settings, off=label == "without"))
                rt = runtimes["with"][0]
                with rt.sessions() as s:
                    opened = s.scalar(select(func.count()).select_from(Finding)) or 0
                first = times["with"][0] / times["without"][0] - 1
                second = times["with"][1] / times["without"][1] - 1
                print(
                    f"{backend:10} actions={args.actions} findings opened={opened}\n"
                    f"    first recompute:  {times['without'][0]:6.1f}s without findings, "
                    f"{times['with'][0]:6.1f}s with "
                    f"({first * 100:+.1f} %)\n"
                    f"    second recompute: {times['without'][1]:6.1f}s without findings, "
                    f"{times['with'][1]:6.1f}s with "
                    f"({second * 100:+.1f} %)   target < +10 %   load={os.getloadavg()[0]:.2f}",
                    flush=True,
                )
            finally:
                for rt, _settings, url in runtimes.values():
                    rt.close()
                    drop(url)


if __name__ == "__main__":
    main()
