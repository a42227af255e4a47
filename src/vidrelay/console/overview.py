"""`/console`: the overview (how the station runs) and what needs the operator's attention.

Every figure comes from an aggregate of `store/stats.py` (one indexed query each); the lists
of what needs attention show their first `ATTENTION_ROWS` and page on from a "more" link.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from fastapi import APIRouter
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from vidrelay.channel_admin import health_view
from vidrelay.console.charts import Series, bar_chart
from vidrelay.console.operator import Operator
from vidrelay.console.pages import PageRoute, context_of, render
from vidrelay.domain.channels import Channel, embedded_local_channel
from vidrelay.domain.pricing import micros_to_usd
from vidrelay.store import jobs as job_store
from vidrelay.store import stats

T = TypeVar("T")

router = APIRouter(prefix="/console", route_class=PageRoute, include_in_schema=False)

ATTENTION_ROWS = 10
DAYS = 7
"""The charts show the last `DAYS` whole UTC days and today (one pass over their jobs)."""
DELIVERIES_WINDOW_S = 7 * stats.DAY_S
"""A failing delivery older than a week no longer needs attention on the overview."""


def _hour(moment: int) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%H:00")


def _day_hour(moment: int) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%m-%d %H:00")


def _day(moment: int) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%m-%d")


def _outcome_chart(buckets: list[stats.JobFigures], label: str, title: str) -> Markup:
    labels = [_hour(b.start) if label == "hour" else _day_hour(b.start) for b in buckets]
    return bar_chart(
        labels,
        [
            Series("completed", [b.completed for b in buckets]),
            Series("failed", [b.failed for b in buckets]),
            Series("in progress", [b.unfinished for b in buckets]),
        ],
        title=title,
    )


async def channels_in_force(request: Request) -> list[Channel]:
    """The declared channels, or the embedded local one while none is (as the engine sees)."""
    context = context_of(request)
    declared = await context.channels.declared()
    settings = context.settings
    return declared or [
        embedded_local_channel(
            settings.local_max_concurrency, settings.local_cost_per_second_micros
        )
    ]


@router.get("")
async def overview(request: Request, session: Operator) -> Response:
    context = context_of(request)
    now = int(time.time())
    next_hour = now - now % stats.HOUR_S + stats.HOUR_S
    today = now - now % stats.DAY_S
    db = context.db

    async def read(query: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        async with db.read() as conn:
            return await query(conn)

    # the two costly aggregates on connections of their own, side by side
    hours, performance = await asyncio.gather(
        read(
            lambda conn: stats.job_figures(
                conn, start=today - DAYS * stats.DAY_S, end=next_hour, bucket_s=stats.HOUR_S
            )
        ),
        read(lambda conn: stats.channel_performance(conn, since=now - stats.DAY_S)),
    )
    async with db.read() as conn:
        running = await job_store.in_progress_by_channel(conn)
        low = await stats.low_balance_tenants(conn, limit=ATTENTION_ROWS + 1)
        failing = await stats.failing_deliveries(
            conn, since=now - DELIVERIES_WINDOW_S, limit=ATTENTION_ROWS + 1
        )
    channels = await channels_in_force(request)
    breakers = await context.breakers.load()
    health = {channel.name: health_view(channel, breakers) for channel in channels}
    money = stats.by_day(hours)
    labels = [_day(day.start) for day in money]
    names = [channel.name for channel in channels]
    timed = [name for name in names if performance.get(name) and performance[name].p50_s]
    values = {
        "outcomes_day": _outcome_chart(
            hours[-24:], "hour", "Jobs per hour by outcome, last 24 hours (UTC)"
        ),
        "outcomes_week": _outcome_chart(
            hours, "day", f"Jobs per hour by outcome, the last {DAYS} days and today"
        ),
        "money_chart": bar_chart(
            labels,
            [
                Series("revenue", [float(micros_to_usd(d.revenue_micros)) for d in money]),
                Series("upstream cost", [float(micros_to_usd(d.cost_micros)) for d in money]),
                Series("margin", [float(micros_to_usd(d.margin_micros)) for d in money]),
            ],
            title=f"Revenue, upstream cost and margin per day, the last {DAYS} days and today",
            stacked=False,
            unit="$",
        ),
        "money": list(reversed(money)),
        "speed_chart": bar_chart(
            timed,
            [
                Series("p50", [performance[name].p50_s or 0 for name in timed]),
                Series("p95", [performance[name].p95_s or 0 for name in timed]),
            ],
            title="Time to complete per channel, last 24 hours",
            stacked=False,
            unit="s",
        ),
        "load_chart": bar_chart(
            names,
            [
                Series("in flight", [running.get(name, 0) for name in names]),
                Series("limit", [channel.max_concurrency for channel in channels]),
            ],
            title="Jobs in flight per channel against its limit",
            stacked=False,
        ),
        "channels": channels,
        "performance": performance,
        "running": running,
        "health": health,
        "troubled": [
            channel
            for channel in channels
            if not channel.enabled
            or channel.auto_disabled
            or health[channel.name]["circuit"] == "open"
        ],
        "low": low[:ATTENTION_ROWS],
        "low_more": low[ATTENTION_ROWS - 1].cursor if len(low) > ATTENTION_ROWS else None,
        "failing": failing[:ATTENTION_ROWS],
        "failing_more": (
            failing[ATTENTION_ROWS - 1].cursor if len(failing) > ATTENTION_ROWS else None
        ),
        "low_balance": stats.LOW_BALANCE_MICROS,
    }
    return render(request, "operator/overview.html", values, session=session)


@router.get("/attention/tenants")
async def low_balance_page(request: Request, session: Operator, after: str = "") -> Response:
    """Every tenant near zero balance, a page at a time."""
    async with context_of(request).db.read() as conn:
        found = await stats.low_balance_tenants(
            conn, after=_cursor(after), limit=ATTENTION_ROWS * 5 + 1
        )
    page = found[: ATTENTION_ROWS * 5]
    values = {
        "what": "tenants",
        "rows": page,
        "more": page[-1].cursor if len(found) > len(page) else None,
        "low_balance": stats.LOW_BALANCE_MICROS,
    }
    return render(request, "operator/attention.html", values, session=session)


@router.get("/attention/deliveries")
async def failing_deliveries_page(request: Request, session: Operator, after: str = "") -> Response:
    """Every failing webhook delivery of the last week, a page at a time."""
    async with context_of(request).db.read() as conn:
        found = await stats.failing_deliveries(
            conn,
            since=int(time.time()) - DELIVERIES_WINDOW_S,
            after=_cursor(after),
            limit=ATTENTION_ROWS * 5 + 1,
        )
    page = found[: ATTENTION_ROWS * 5]
    values = {
        "what": "deliveries",
        "rows": page,
        "more": page[-1].cursor if len(found) > len(page) else None,
        "low_balance": stats.LOW_BALANCE_MICROS,
    }
    return render(request, "operator/attention.html", values, session=session)


def _cursor(after: str) -> str | None:
    """A cursor as the pages write it (`<number>:<id>`); anything else starts from the top."""
    number, colon, _ = after.partition(":")
    return after if colon and number.isdigit() and len(number) <= 18 else None
