"""The portal's account page: balance, 30 days of usage, and the ledger, newest first."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response

from vidrelay.console.charts import Series, bar_chart
from vidrelay.console.pages import PageRoute, context_of, render
from vidrelay.console.portal import Tenant
from vidrelay.domain.pricing import micros_to_usd
from vidrelay.store import accounts
from vidrelay.store.usage import SECONDS_PER_DAY, VideoUsage, video_usage

router = APIRouter(prefix="/portal", route_class=PageRoute, include_in_schema=False)

USAGE_DAYS = 30
LEDGER_PAGE = 25


@router.get("")
async def account(
    request: Request,
    session: Tenant,
    before: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """`before` pages the ledger: the id of the last entry of the page before."""
    assert session.tenant_id is not None
    today = int(time.time()) // SECONDS_PER_DAY * SECONDS_PER_DAY
    first_day = today - (USAGE_DAYS - 1) * SECONDS_PER_DAY
    async with context_of(request).db.read() as conn:
        balance = await accounts.tenant_balance(conn, session.tenant_id)
        usage = await video_usage(
            conn,
            session.tenant_id,
            start=first_day,
            end=today + SECONDS_PER_DAY,
            by_day=True,
            by_model=False,
        )
        entries = await accounts.list_ledger(
            conn, tenant_id=session.tenant_id, before_id=before, limit=LEDGER_PAGE + 1
        )
    jobs_chart, spend_chart = usage_charts(usage, first_day)
    return render(
        request,
        "portal/home.html",
        {
            "balance_micros": balance,
            "jobs_chart": jobs_chart,
            "spend_chart": spend_chart,
            "spent_micros": sum(day.amount_micros for day in usage),
            "job_count": sum(day.jobs for day in usage),
            "entries": entries[:LEDGER_PAGE],
            "next_before": entries[LEDGER_PAGE - 1].id if len(entries) > LEDGER_PAGE else None,
            "paged": before is not None,
        },
        session=session,
    )


def usage_charts(usage: list[VideoUsage], first_day: int) -> tuple[Markup, Markup]:
    """Jobs per day by outcome, and spend per day, over USAGE_DAYS days (a day without jobs
    is a zero, not a gap)."""
    by_day = {day.day_start: day for day in usage}
    days = [first_day + index * SECONDS_PER_DAY for index in range(USAGE_DAYS)]
    labels = [datetime.fromtimestamp(day, UTC).strftime("%m-%d") for day in days]
    found = [by_day.get(day) for day in days]
    jobs = bar_chart(
        labels,
        [
            Series("completed", [day.completed if day else 0 for day in found]),
            Series("failed", [day.failed if day else 0 for day in found]),
            Series("in progress", [day.in_progress if day else 0 for day in found]),
        ],
        title="Videos per day",
    )
    spend = bar_chart(
        labels,
        [
            Series(
                "spend",
                [float(micros_to_usd(day.amount_micros)) if day else 0.0 for day in found],
            )
        ],
        title="Spend per day (USD)",
        unit="$",
    )
    return jobs, spend
