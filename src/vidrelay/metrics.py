"""What a process exposes at `/metrics` (DESIGN.md §7): one registry per process, holding the
HTTP families where it serves HTTP, the engine families where it runs the engine, and the
database's figures (ledger, channels, orphaned submissions; queue and in-flight counts where the
engine runs) read at scrape time, so that every process agrees with the database.

Labels are bounded: route templates (never raw paths or ids), known methods, status codes,
model and channel names (operator data), outcomes from fixed vocabularies.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import time
from collections.abc import AsyncIterator, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from vidrelay.store.database import Database
from vidrelay.store.metrics import DatabaseFigures, database_figures
from vidrelay.upstreams.base import UpstreamError

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_DATABASE_CACHE_S = 2.0
"""Scrapes closer together than this (several Prometheus servers, a dashboard) share a read."""
_HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_JOB_BUCKETS = (5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0)
_UPSTREAM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` series: twice the series
NO_CHANNEL = "none"
"""The channel label of a job that failed before any channel took it."""


def token_accepted(authorization: str | None, token: str | None) -> bool:
    """`Authorization: Bearer <token>` when a token is set (constant-time); anything when not."""
    if not token:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    given = given.strip()
    return scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode())


class HttpMetrics:
    """Requests per route template, method and status, and their durations per route."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "vidrelay_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "vidrelay_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template.",
            ["route"],
            buckets=_HTTP_BUCKETS,
            registry=registry,
        )
        self.jobs_accepted = Counter(
            "vidrelay_jobs_accepted",
            "Jobs accepted (charged and queued) by this API process, by model.",
            ["model"],
            registry=registry,
        )


class EngineMetrics:
    """What the runner and the webhook sender of this process did."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.jobs_finished = Counter(
            "vidrelay_jobs_finished",
            "Jobs this engine ended, by model, channel and outcome (completed or failed).",
            ["model", "channel", "outcome"],
            registry=registry,
        )
        self.job_duration = Histogram(
            "vidrelay_job_duration_seconds",
            "Time from accept to completed, by model and channel.",
            ["model", "channel"],
            buckets=_JOB_BUCKETS,
            registry=registry,
        )
        self.upstream_requests = Counter(
            "vidrelay_upstream_requests",
            "Requests to upstream channels, by channel, operation and outcome "
            "(ok or the failure kind).",
            ["channel", "operation", "outcome"],
            registry=registry,
        )
        self.upstream_duration = Histogram(
            "vidrelay_upstream_request_duration_seconds",
            "Time an upstream took to answer, by channel and operation.",
            ["channel", "operation"],
            buckets=_UPSTREAM_BUCKETS,
            registry=registry,
        )
        self.webhook_deliveries = Counter(
            "vidrelay_webhook_deliveries",
            "Webhook delivery attempts, by outcome (delivered, retrying, abandoned).",
            ["outcome"],
            registry=registry,
        )

    def job_finished(
        self, model: str, channel: str | None, completed: bool, accepted_at: float
    ) -> None:
        channel = channel or NO_CHANNEL
        outcome = "completed" if completed else "failed"
        self.jobs_finished.labels(model, channel, outcome).inc()
        if completed:
            self.job_duration.labels(model, channel).observe(max(0.0, time.time() - accepted_at))

    def webhook_delivery(self, delivered: bool, retrying: bool) -> None:
        outcome = "delivered" if delivered else "retrying" if retrying else "abandoned"
        self.webhook_deliveries.labels(outcome).inc()

    @contextlib.asynccontextmanager
    async def upstream_request(self, channel: str, operation: str) -> AsyncIterator[None]:
        """Counts and times the adapter call in the block: `ok`, or the `FailureKind` of the
        `UpstreamError` it raised (a cancelled call is not counted)."""
        started = time.monotonic()
        try:
            yield
        except UpstreamError as error:
            self._upstream_answered(channel, operation, error.kind.value, started)
            raise
        self._upstream_answered(channel, operation, "ok", started)

    def _upstream_answered(
        self, channel: str, operation: str, outcome: str, started: float
    ) -> None:
        self.upstream_requests.labels(channel, operation, outcome).inc()
        self.upstream_duration.labels(channel, operation).observe(time.monotonic() - started)


class DatabaseGauges(Collector):
    """The database's figures as gauges, read at most every `_DATABASE_CACHE_S` by
    `refresh` (prometheus_client collects synchronously; the read is async)."""

    def __init__(self) -> None:
        self.db: Database | None = None
        self.engine = False
        self._figures: DatabaseFigures | None = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:
            if self.db is None or time.monotonic() - self._read_at < _DATABASE_CACHE_S:
                return
            async with self.db.read() as conn:
                self._figures = await database_figures(conn, engine=self.engine)
            self._read_at = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        figures = self._figures
        if figures is None:
            return
        ledger = GaugeMetricFamily(
            "vidrelay_ledger_usd_total",
            "Ledger sums in USD by kind, signed (charges negative): their sum is what "
            "tenants hold.",
            labels=["kind"],
        )
        for kind, micros in sorted(figures.ledger_micros.items()):
            ledger.add_metric([kind], micros / 1_000_000)
        yield ledger
        up = GaugeMetricFamily(
            "vidrelay_channel_up", "1 while a channel is switched on.", labels=["channel"]
        )
        for channel, is_up in sorted(figures.channel_up.items()):
            up.add_metric([channel], 1.0 if is_up else 0.0)
        yield up
        yield GaugeMetricFamily(
            "vidrelay_orphaned_submissions",
            "Submissions a crash may have left running upstream (jobs.orphaned_submissions).",
            value=figures.orphaned_submissions,
        )
        if figures.queue_depth is None:
            return
        yield GaugeMetricFamily(
            "vidrelay_queue_depth", "Jobs waiting in the queue.", value=figures.queue_depth
        )
        in_flight = GaugeMetricFamily(
            "vidrelay_jobs_in_flight",
            "Jobs running on each channel, over every worker.",
            labels=["channel"],
        )
        for channel, count in sorted(figures.in_flight.items()):
            in_flight.add_metric([channel], count)
        yield in_flight


class ProcessMetrics:
    """This process's registry: `serving_http` and `running_engine` add what it does."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._database = DatabaseGauges()
        self.registry.register(self._database)
        self._http: HttpMetrics | None = None
        self._engine: EngineMetrics | None = None

    def watch_database(self, db: Database) -> None:
        self._database.db = db

    def serving_http(self) -> HttpMetrics:
        if self._http is None:
            self._http = HttpMetrics(self.registry)
        return self._http

    def running_engine(self) -> EngineMetrics:
        if self._engine is None:
            self._engine = EngineMetrics(self.registry)
            self._database.engine = True
        return self._engine

    async def exposition(self) -> bytes:
        """The text exposition format, the database's figures read first."""
        await self._database.refresh()
        return generate_latest(self.registry)
