"""Read-only aggregates for the operator console's overview and channel list.

Each is one query that groups in SQL (portable to SQLite and PostgreSQL) over a time window of
`jobs.created_at`, served by `ix_jobs_created_stats` (created_at, status, channel, price,
cost, finished and created times: a covering index, so the figures of a week never read the
table's rows). An answer's
size is bounded by its buckets or channels, never by the number of jobs. Money follows
`store/usage.py`: revenue is the price of the jobs that did not fail (failed ones were
refunded), cost is what the upstreams charged, margin the difference.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, and_, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.domain.jobs import UNFINISHED, JobStatus
from vidrelay.store.tables import jobs, tenants, webhook_deliveries, webhook_events

HOUR_S = 3_600
DAY_S = 86_400
LOW_BALANCE_MICROS = 1_000_000
"""A tenant under $1 is "near zero": it cannot pay for most videos any more."""

_COMPLETED = JobStatus.COMPLETED.value
_FAILED = JobStatus.FAILED.value


@dataclass(frozen=True)
class JobFigures:
    """The jobs created in one bucket [start, start + bucket): where they are now, and their
    money (revenue: prices of those that did not fail; cost: what the upstreams charged)."""

    start: int
    completed: int = 0
    failed: int = 0
    unfinished: int = 0
    revenue_micros: int = 0
    cost_micros: int = 0

    @property
    def margin_micros(self) -> int:
        return self.revenue_micros - self.cost_micros


async def job_figures(
    conn: AsyncConnection, *, start: int, end: int, bucket_s: int
) -> list[JobFigures]:
    """Jobs created in [start, end) per bucket (`start` a multiple of `bucket_s`), every
    bucket present, oldest first: one pass over the window's part of the covering index."""
    # the buckets as a recursive CTE joined to the index's ranges: each job is read once,
    # within its bucket, with no bucket computed per job (half the time on SQLite)
    first = select(literal(start, BigInteger).label("start")).cte("buckets", recursive=True)
    buckets = first.union_all(
        select((first.c.start + bucket_s).label("start")).where(first.c.start + bucket_s < end)
    )
    within = and_(
        jobs.c.created_at >= buckets.c.start,
        jobs.c.created_at < buckets.c.start + bucket_s,
        jobs.c.created_at < end,
    )
    rows = await conn.execute(
        select(
            buckets.c.start.label("bucket"),
            jobs.c.status,
            func.count().label("jobs"),
            func.coalesce(func.sum(jobs.c.price_micros), 0).label("price"),
            func.coalesce(func.sum(jobs.c.cost_micros), 0).label("cost"),
        )
        .select_from(buckets.join(jobs, within))
        .group_by(buckets.c.start, jobs.c.status)
    )
    found: dict[int, dict[str, int]] = {}
    unfinished = {status.value for status in UNFINISHED}
    for row in rows:
        figures = found.setdefault(int(row.bucket), {})
        kind = "unfinished" if row.status in unfinished else row.status
        figures[kind] = figures.get(kind, 0) + int(row.jobs)
        if row.status != _FAILED:
            figures["revenue"] = figures.get("revenue", 0) + int(row.price)
        figures["cost"] = figures.get("cost", 0) + int(row.cost)
    return [
        JobFigures(
            start=moment,
            completed=found.get(moment, {}).get(_COMPLETED, 0),
            failed=found.get(moment, {}).get(_FAILED, 0),
            unfinished=found.get(moment, {}).get("unfinished", 0),
            revenue_micros=found.get(moment, {}).get("revenue", 0),
            cost_micros=found.get(moment, {}).get("cost", 0),
        )
        for moment in range(start, end, bucket_s)
    ]


def by_day(buckets: list[JobFigures]) -> list[JobFigures]:
    """Buckets of an hour (or any divisor of a day) added up per UTC day, oldest first."""
    days: dict[int, JobFigures] = {}
    for one in buckets:
        day = one.start - one.start % DAY_S
        before = days.get(day, JobFigures(day))
        days[day] = JobFigures(
            day,
            before.completed + one.completed,
            before.failed + one.failed,
            before.unfinished + one.unfinished,
            before.revenue_micros + one.revenue_micros,
            before.cost_micros + one.cost_micros,
        )
    return [days[day] for day in sorted(days)]


@dataclass(frozen=True)
class ChannelPerformance:
    """A channel's jobs created since a moment that have finished."""

    channel: str
    completed: int
    failed: int
    p50_s: float | None
    """Median time from accept to completed, of the completed jobs (nearest rank)."""
    p95_s: float | None

    @property
    def success_rate(self) -> float | None:
        finished = self.completed + self.failed
        return self.completed / finished if finished else None


async def channel_performance(
    conn: AsyncConnection, *, since: int
) -> dict[str, ChannelPerformance]:
    """Per channel, of the jobs created since `since`: completed and failed counts and the
    p50/p95 time to complete, exact nearest-rank percentiles picked in SQL by a window
    function (no duration leaves the database but the two picked)."""
    # MATERIALIZED: the window's rows first (the time index), then the grouping; else SQLite
    # would walk an index on `channel` (every job ever made) to group without sorting
    recent = (
        select(
            jobs.c.channel,
            jobs.c.status,
            (jobs.c.finished_ts - jobs.c.created_ts).label("duration"),
        )
        .where(jobs.c.created_at >= since, jobs.c.channel.is_not(None))
        .cte("recent")
        .prefix_with("MATERIALIZED")
    )
    counts = await conn.execute(
        select(
            recent.c.channel,
            func.count().filter(recent.c.status == _COMPLETED).label("completed"),
            func.count().filter(recent.c.status == _FAILED).label("failed"),
        )
        .where(recent.c.status.in_([_COMPLETED, _FAILED]))
        .group_by(recent.c.channel)
    )
    ranked = (
        select(
            recent.c.channel,
            recent.c.duration,
            func.row_number()
            .over(partition_by=recent.c.channel, order_by=recent.c.duration)
            .label("rank"),
            func.count().over(partition_by=recent.c.channel).label("total"),
        )
        .where(recent.c.status == _COMPLETED, recent.c.duration.is_not(None))
        .subquery()
    )
    median, high = (ranked.c.total * 50 + 99) // 100, (ranked.c.total * 95 + 99) // 100
    picked = await conn.execute(
        select(
            ranked.c.channel, ranked.c.duration, ranked.c.rank == median, ranked.c.rank == high
        ).where(or_(ranked.c.rank == median, ranked.c.rank == high))
    )
    percentiles: dict[str, dict[int, float]] = {}
    for channel, value, is_median, is_high in picked:
        found = percentiles.setdefault(channel, {})
        if is_median:
            found[50] = float(value)
        if is_high:
            found[95] = float(value)
    return {
        row.channel: ChannelPerformance(
            row.channel,
            int(row.completed),
            int(row.failed),
            percentiles.get(row.channel, {}).get(50),
            percentiles.get(row.channel, {}).get(95),
        )
        for row in counts
    }


@dataclass(frozen=True)
class LowBalance:
    tenant_id: str
    name: str
    balance_micros: int

    @property
    def cursor(self) -> str:
        return f"{self.balance_micros}:{self.tenant_id}"


async def low_balance_tenants(
    conn: AsyncConnection, *, after: str | None = None, limit: int = 10
) -> list[LowBalance]:
    """Tenants under `LOW_BALANCE_MICROS`, lowest balance first (then by id), `limit` of them
    after the cursor `after` (a `LowBalance.cursor`): one range of `ix_tenants_balance`."""
    query = select(tenants.c.id, tenants.c.name, tenants.c.balance_micros).where(
        tenants.c.balance_micros < LOW_BALANCE_MICROS
    )
    if after:
        balance, _, tenant_id = after.partition(":")
        query = query.where(
            or_(
                tenants.c.balance_micros > int(balance),
                and_(tenants.c.balance_micros == int(balance), tenants.c.id > tenant_id),
            )
        )
    rows = await conn.execute(query.order_by(tenants.c.balance_micros, tenants.c.id).limit(limit))
    return [LowBalance(row.id, row.name, int(row.balance_micros)) for row in rows]


@dataclass(frozen=True)
class FailingDelivery:
    id: str
    tenant_name: str
    url: str
    event_type: str
    job_id: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: int

    @property
    def cursor(self) -> str:
        return f"{self.created_at}:{self.id}"


async def failing_deliveries(
    conn: AsyncConnection, *, since: int, after: str | None = None, limit: int = 10
) -> list[FailingDelivery]:
    """Webhook deliveries created since `since` that gave up (`failed`) or are being retried
    (`pending` after a failed attempt), newest first, `limit` of them after the cursor
    `after` (a `FailingDelivery.cursor`); `ix_webhook_deliveries_status_created` serves it."""
    failing = or_(
        webhook_deliveries.c.status == "failed",
        and_(webhook_deliveries.c.status == "pending", webhook_deliveries.c.attempts > 0),
    )
    query = (
        select(
            webhook_deliveries,
            webhook_events.c.type,
            webhook_events.c.job_id,
            tenants.c.name.label("tenant_name"),
        )
        .join(webhook_events, webhook_events.c.id == webhook_deliveries.c.event_id)
        .join(tenants, tenants.c.id == webhook_deliveries.c.tenant_id)
        .where(failing, webhook_deliveries.c.created_at >= since)
    )
    if after:
        created, _, delivery_id = after.partition(":")
        query = query.where(
            or_(
                webhook_deliveries.c.created_at < int(created),
                and_(
                    webhook_deliveries.c.created_at == int(created),
                    webhook_deliveries.c.id < delivery_id,
                ),
            )
        )
    rows = await conn.execute(
        query.order_by(
            webhook_deliveries.c.created_at.desc(), webhook_deliveries.c.id.desc()
        ).limit(limit)
    )
    return [
        FailingDelivery(
            row.id,
            row.tenant_name,
            row.url,
            row.type,
            row.job_id,
            row.status,
            int(row.attempts),
            row.last_status_code,
            row.last_error,
            int(row.created_at),
        )
        for row in rows
    ]
