"""Findings benchmark (not a test): what keeping findings adds to a full recompute, in the same run.

Two identical synthetic cities (``bench.coverage.populate``) per backend: one recomputed as the product does
(findings opened, closed and reopened in bulk per batch), one with the findings step switched off, as the
baseline. Each gets a first full recompute (every link and verdict made, every finding opened) and a second
(nothing to change); the runs alternate so that the machine's load falls on both. Prints the times, the ratio
and the time spent inside the findings step as a share of the rest of the same run (target: < 10 %;
unlike the ratio of two runs, it holds on a busy machine), the number of findings opened and the load average.

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
def findings_step(replace: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Iterator[None]:
    # the linking writer's one findings call site, wrapped (timed) or replaced (baseline) for one run only
    kept: Callable[..., Any] = getattr(full, "follow_verdicts")  # noqa: B009
    setattr(full, "follow_verdicts", replace(kept))  # noqa: B010
    try:
        yield
    finally:
        setattr(full, "follow_verdicts", kept)  # noqa: B010


def timed(rt: Runtime, settings: Settings, off: bool) -> tuple[float, float]:
    """(seconds for the whole recompute, seconds of it spent keeping findings)."""
    inside = [0.0]

    def timing(step: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return step(*args, **kw)
            finally:
                inside[0] += time.perf_counter() - t0

        return run

    t0 = time.perf_counter()
    with findings_step((lambda _step: lambda *_a, **_k: 0) if off else timing):
        recompute_all(rt.sessions, settings, NOW, "bench")
    return time.perf_counter() - t0, inside[0]


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
                shares: list[float] = []
                for order in (("without", "with"), ("with", "without")):  # first runs, then second runs
                    for label in order:
                        rt, settings, _url = runtimes[label]
                        total, inside = timed(rt, settings, off=label == "without")
                        times[label].append(total)
                        if label == "with":
                            shares.append(inside / (total - inside))
                rt = runtimes["with"][0]
                with rt.sessions() as s:
                    opened = s.scalar(select(func.count()).select_from(Finding)) or 0
                print(f"{backend:10} actions={args.actions} findings opened={opened} load={os.getloadavg()[0]:.2f}")
                for i, run in enumerate(("first recompute ", "second recompute")):
                    print(
                        f"    {run}: {times['without'][i]:6.1f}s without findings, {times['with'][i]:6.1f}s with; "
                        f"findings step inside the run: +{shares[i] * 100:.1f} % of the rest (target < 10 %)",
                        flush=True,
                    )
            finally:
                for rt, _settings, url in runtimes.values():
                    rt.close()
                    drop(url)


if __name__ == "__main__":
    main()
