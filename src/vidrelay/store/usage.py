"""Read-only aggregates over jobs: a tenant's video usage and the operator's revenue per channel.

Both group in SQL (portable to SQLite and PostgreSQL), so an answer costs one query and its size
is bounded by the number of groups, never by the number of jobs. Deleted jobs count: they were
billed. A failed job was refunded, so it counts as a job but not as seconds or money sold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Integer, case, cast, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.domain.jobs import JobStatus
from vidrelay.store.tables import jobs

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class VideoUsage:
    """One group of a tenant's jobs. `day_start` (unix seconds, a UTC midnight) and `model`
    are None when the answer is not grouped by them."""

    day_start: int | None
    model: str | None
    jobs: int
    completed: int
    failed: int
    seconds: int
    """Seconds of video of the jobs that did not fail."""
    amount_micros: int
    """What the tenant paid: prices of the jobs that did not fail."""
    operation: str | None = None
    """`create`, `remix`, `extension` or `edit` when grouped by operation."""

    @property
    def in_progress(self) -> int:
        """Queued or running: charged, and refunded later should they fail."""
        return self.jobs - self.completed - self.failed


@dataclass(frozen=True)
class ChannelRevenue:
    channel: str | None
    """None for jobs that never reached a channel."""
    jobs: int
    completed: int
    failed: int
    revenue_micros: int
    """Prices of the jobs that did not fail (failed ones were refunded)."""
    cost_micros: int
    """What the upstreams charged us; a job with no recorded cost counts as 0."""

    @property
    def margin_micros(self) -> int:
        return self.revenue_micros - self.cost_micros


def _count_where(condition: ColumnElement[bool]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _sum_where(condition: ColumnElement[bool], value: ColumnElement[Any]) -> ColumnElement[Any]:
    return func.coalesce(func.sum(case((condition, value), else_=0)), 0)


async def video_usage(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    start: int,
    end: int,
    by_day: bool,
    by_model: bool,
    by_operation: bool = False,
) -> list[VideoUsage]:
    """A tenant's jobs created in [start, end), grouped by UTC day and/or model, oldest day
    first. Groups with no job are absent; ungrouped, the answer is one row, or none."""
    window = (
        select(
            (jobs.c.created_at - jobs.c.created_at % SECONDS_PER_DAY).label("day_start"),
            jobs.c.model,
            func.coalesce(jobs.c.operation, "create").label("operation"),
            jobs.c.status,
            cast(jobs.c.seconds, Integer).label("seconds"),
            jobs.c.price_micros,
        )
        .where(
            jobs.c.tenant_id == tenant_id,
            # created_at is int(created_ts): the same bounds on created_ts give the same rows
            # and let the (tenant_id, created_ts) index read only the window
            jobs.c.created_ts >= start,
            jobs.c.created_ts < end,
            jobs.c.created_at >= start,
            jobs.c.created_at < end,
        )
        .subquery()
    )
    keys: list[ColumnElement[Any]] = []
    if by_day:
        keys.append(window.c.day_start)
    if by_model:
        keys.append(window.c.model)
    if by_operation:
        keys.append(window.c.operation)
    not_failed = window.c.status != JobStatus.FAILED.value
    query = select(
        *keys,
        func.count().label("jobs"),
        _count_where(window.c.status == JobStatus.COMPLETED.value).label("completed"),
        _count_where(window.c.status == JobStatus.FAILED.value).label("failed"),
        _sum_where(not_failed, window.c.seconds).label("seconds"),
        _sum_where(not_failed, window.c.price_micros).label("amount"),
    ).select_from(window)
    if keys:
        query = query.group_by(*keys).order_by(*keys)
    usage: list[VideoUsage] = []
    for row in await conn.execute(query):
        if not row.jobs:
            continue
        usage.append(
            VideoUsage(
                day_start=int(row.day_start) if by_day else None,
                model=row.model if by_model else None,
                jobs=int(row.jobs),
                completed=int(row.completed),
                failed=int(row.failed),
                seconds=int(row.seconds),
                amount_micros=int(row.amount),
                operation=row.operation if by_operation else None,
            )
        )
    return usage


async def revenue_by_channel(
    conn: AsyncConnection, *, since: int | None = None, until: int | None = None
) -> list[ChannelRevenue]:
    """Every tenant's jobs created in [since, until), per channel; ordered by channel name,
    the jobs that never reached a channel last."""
    not_failed = jobs.c.status != JobStatus.FAILED.value
    query = select(
        jobs.c.channel,
        func.count().label("jobs"),
        _count_where(jobs.c.status == JobStatus.COMPLETED.value).label("completed"),
        _count_where(jobs.c.status == JobStatus.FAILED.value).label("failed"),
        _sum_where(not_failed, jobs.c.price_micros).label("revenue"),
        func.coalesce(func.sum(jobs.c.cost_micros), 0).label("cost"),
    ).group_by(jobs.c.channel)
    if since is not None:
        query = query.where(jobs.c.created_at >= since)
    if until is not None:
        query = query.where(jobs.c.created_at < until)
    rows = [
        ChannelRevenue(
            channel=row.channel,
            jobs=int(row.jobs),
            completed=int(row.completed),
            failed=int(row.failed),
            revenue_micros=int(row.revenue),
            cost_micros=int(row.cost),
        )
        for row in await conn.execute(query)
    ]
    return sorted(rows, key=lambda row: (row.channel is None, row.channel or ""))
