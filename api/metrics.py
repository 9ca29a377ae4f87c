"""Prometheus metrics: request counts from a middleware, stored totals read from the database on scrape."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storage.db import reading
from storage.models import IngestFailure, Recording
from storage.runtime import Runtime


class StoredTotals(Collector):
    """Recordings, bytes and open ingest failures as they are in the shared database (all replicas agree)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def collect(self) -> Iterator[Metric]:
        with reading(self.runtime.sessions) as s:
            count, size = s.execute(select(func.count(Recording.id), func.coalesce(func.sum(Recording.size), 0))).one()
            failures = s.scalar(select(func.count(IngestFailure.id)).where(IngestFailure.resolved_at.is_(None)))
        yield GaugeMetricFamily("bwc_recordings_stored", "Recordings stored and verified.", value=count)
        yield GaugeMetricFamily("bwc_recordings_bytes", "Bytes of stored recordings.", value=int(size))
        yield GaugeMetricFamily("bwc_ingest_failures_open", "Files waiting for an ingest retry.", value=failures or 0)


@dataclass
class Metrics:
    registry: CollectorRegistry
    requests: Counter


def make_metrics() -> Metrics:
    """A registry per app, so that several apps in one process (tests) do not collide."""
    registry = CollectorRegistry()
    requests = Counter("bwc_http_requests", "HTTP requests answered.", ["method", "route", "status"], registry=registry)
    return Metrics(registry, requests)


class RequestMetrics:
    """Pure ASGI middleware counting answered requests by route template (not raw path: ids would explode)."""

    def __init__(self, app: ASGIApp, counter: Counter) -> None:
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_counting(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_counting)
        finally:
            route = scope.get("route")
            template = getattr(route, "path_format", None) or getattr(route, "path", None) or "unmatched"
            self.counter.labels(scope["method"], template, str(status)).inc()
