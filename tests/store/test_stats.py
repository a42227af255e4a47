"""The console's aggregates (store/stats.py) on SQLite and PostgreSQL, with exact figures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest_asyncio
from sqlalchemy import insert

from vidrelay.store import stats
from vidrelay.store.database import Database
from vidrelay.store.tables import jobs, tenants, webhook_deliveries, webhook_events

DAY = 1_790_000_000 - 1_790_000_000 % stats.DAY_S  # a UTC midnight
HOUR = stats.HOUR_S


@pytest_asyncio.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()


def job(
    number: int,
    created_at: int,
    status: str,
    *,
    channel: str | None = "alpha",
    price: int = 1_000_000,
    cost: int | None = None,
    took_s: float | None = None,
) -> dict[str, Any]:
    return {
        "id": f"video_{number:04d}",
        "created_ts": created_at + 0.25,
        "tenant_id": "t1",
        "key_id": "k1",
        "model": "sora-2",
        "route_class": "official",
        "seconds": "4",
        "size": "720x1280",
        "prompt": "p",
        "has_reference": 0,
        "price_micros": price,
        "status": status,
        "progress": 0,
        "created_at": created_at,
        "attempts": 0,
        "channel": channel,
        "cost_micros": cost,
        "finished_ts": created_at + 0.25 + took_s if took_s is not None else None,
    }


async def seed(db: Database, rows: list[dict[str, Any]]) -> None:
    async with db.write() as conn:
        await conn.execute(
            insert(tenants),
            [
                {"id": f"t{n}", "name": f"tenant {n}", "balance_micros": b, "created_at": DAY}
                for n, b in ((1, 5_000_000), (2, 999_999), (3, 0), (4, 999_999), (5, 1_000_000))
            ],
        )
        if rows:
            await conn.execute(insert(jobs), rows)


async def test_job_figures_count_outcomes_and_money_per_bucket_and_only_the_window(
    db: Database,
) -> None:
    await seed(
        db,
        [
            job(1, DAY + 10, "completed", price=400_000, cost=150_000),
            job(2, DAY + HOUR - 1, "failed", price=900_000, cost=20_000),
            job(3, DAY + HOUR, "queued", price=300_000),
            job(4, DAY + HOUR + 5, "in_progress", price=300_000),
            job(5, DAY + HOUR + 6, "completed", price=1_200_000, cost=1_000_000),
            job(6, DAY - 1, "completed"),  # before the window
            job(7, DAY + 3 * HOUR, "completed"),  # at its end: outside
        ],
    )
    async with db.read() as conn:
        buckets = await stats.job_figures(conn, start=DAY, end=DAY + 3 * HOUR, bucket_s=HOUR)
    assert buckets == [
        stats.JobFigures(DAY, completed=1, failed=1, revenue_micros=400_000, cost_micros=170_000),
        stats.JobFigures(
            DAY + HOUR,
            completed=1,
            unfinished=2,
            revenue_micros=1_800_000,
            cost_micros=1_000_000,
        ),
        stats.JobFigures(DAY + 2 * HOUR),
    ]
    assert buckets[0].margin_micros == 230_000


def test_hours_add_up_per_utc_day() -> None:
    hours = [
        stats.JobFigures(DAY - HOUR, completed=1, revenue_micros=5, cost_micros=1),
        stats.JobFigures(DAY, completed=2, failed=1, revenue_micros=7),
        stats.JobFigures(DAY + 23 * HOUR, unfinished=4, cost_micros=3),
        stats.JobFigures(DAY + 24 * HOUR),
    ]
    assert stats.by_day(hours) == [
        stats.JobFigures(DAY - stats.DAY_S, completed=1, revenue_micros=5, cost_micros=1),
        stats.JobFigures(DAY, completed=2, failed=1, unfinished=4, revenue_micros=7, cost_micros=3),
        stats.JobFigures(DAY + stats.DAY_S),
    ]


async def test_channel_performance_gives_success_rate_and_nearest_rank_percentiles(
    db: Database,
) -> None:
    completed = [
        job(n, DAY + n, "completed", took_s=float(n)) for n in range(1, 21)
    ]  # alpha: 20 completed, taking 1 s … 20 s
    await seed(
        db,
        [
            *completed,
            job(30, DAY + 30, "failed"),
            job(31, DAY + 31, "failed"),
            job(32, DAY + 32, "in_progress"),
            job(40, DAY + 40, "completed", channel="beta", took_s=7.5),
            job(41, DAY + 41, "failed", channel=None),  # never reached a channel
            job(42, DAY - 1, "completed", channel="gamma", took_s=1.0),  # before `since`
        ],
    )
    async with db.read() as conn:
        found = await stats.channel_performance(conn, since=DAY)
    assert found == {
        "alpha": stats.ChannelPerformance("alpha", 20, 2, 10.0, 19.0),
        "beta": stats.ChannelPerformance("beta", 1, 0, 7.5, 7.5),
    }
    assert found["alpha"].success_rate == 20 / 22


async def test_low_balance_tenants_are_paged_lowest_first(db: Database) -> None:
    await seed(db, [])
    async with db.read() as conn:
        first = await stats.low_balance_tenants(conn, limit=2)
        rest = await stats.low_balance_tenants(conn, after=first[-1].cursor, limit=2)
    assert [(t.tenant_id, t.balance_micros) for t in first] == [("t3", 0), ("t2", 999_999)]
    assert [(t.tenant_id, t.balance_micros) for t in rest] == [("t4", 999_999)]


async def test_failing_deliveries_are_failed_or_retried_ones_newest_first(db: Database) -> None:
    await seed(db, [])
    deliveries = [
        ("d1", "failed", 5, DAY + 10),
        ("d2", "pending", 2, DAY + 20),
        ("d3", "pending", 0, DAY + 30),  # not tried yet
        ("d4", "delivered", 1, DAY + 40),
        ("d5", "failed", 5, DAY + 20),
        ("d6", "failed", 5, DAY - 10),  # before `since`
    ]
    async with db.write() as conn:
        await conn.execute(
            insert(webhook_events),
            [
                {
                    "id": f"e{n}",
                    "tenant_id": "t1",
                    "type": "video.failed",
                    "job_id": f"video_{n}",
                    "created_at": DAY,
                }
                for n in range(1, 7)
            ],
        )
        await conn.execute(
            insert(webhook_deliveries),
            [
                {
                    "id": id_,
                    "event_id": f"e{id_[1]}",
                    "tenant_id": "t1",
                    "url": "https://hooks.test/<x>",
                    "status": status,
                    "attempts": attempts,
                    "last_status_code": 500 if attempts else None,
                    "last_error": "HTTP 500",
                    "created_at": created,
                }
                for id_, status, attempts, created in deliveries
            ],
        )
    async with db.read() as conn:
        first = await stats.failing_deliveries(conn, since=DAY, limit=2)
        rest = await stats.failing_deliveries(conn, since=DAY, after=first[-1].cursor, limit=2)
    assert [d.id for d in first] == ["d5", "d2"]
    assert [d.id for d in rest] == ["d1"]
    assert first[0].tenant_name == "tenant 1" and first[0].job_id == "video_5"
