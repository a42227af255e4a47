"""`/v1/dashboard/billing/*`: a tenant's own balance, read with its API key, in the shapes that
chat clients (NextChat and its kin) and new-api answer (new-api `controller/billing.go`:
`GetSubscription`, `GetUsage`).

Those clients show `hard_limit_usd - total_usage / 100` as what is left. So `hard_limit_usd` is
the balance plus everything spent, and `total_usage` (in cents) is the spend in the window asked
for, everything when no date is given: over all time the difference is exactly the balance.
Spend is counted as `GET /v1/usage/videos` counts it: the prices of the jobs that did not fail
(a failed job is refunded), on the day each job was created. Dollars are JSON numbers here,
since that is the shape these clients parse.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from vidrelay.api.auth import Authenticated, Context
from vidrelay.api.usage import LAST_TIMESTAMP
from vidrelay.domain.errors import InvalidRequest
from vidrelay.domain.pricing import micros_to_usd
from vidrelay.store.accounts import tenant_balance
from vidrelay.store.usage import video_usage

router = APIRouter(prefix="/v1/dashboard/billing")

_ALL_TIME = (0, LAST_TIMESTAMP + 1)
_MICROS_PER_CENT = 10_000


@router.get("/subscription")
async def billing_subscription(principal: Authenticated, context: Context) -> JSONResponse:
    """`access_until` is the key's expiry (0: none), as new-api answers."""
    start, end = _ALL_TIME
    async with context.db.read() as conn:
        balance = await tenant_balance(conn, principal.tenant_id)
        spent = await video_usage(
            conn, principal.tenant_id, start=start, end=end, by_day=False, by_model=False
        )
    limit_usd = float(micros_to_usd(balance + sum(group.amount_micros for group in spent)))
    return JSONResponse(
        {
            "object": "billing_subscription",
            "has_payment_method": True,
            "soft_limit_usd": limit_usd,
            "hard_limit_usd": limit_usd,
            "system_hard_limit_usd": limit_usd,
            "access_until": principal.key_expires_at or 0,
        }
    )


@router.get("/usage")
async def billing_usage(
    principal: Authenticated,
    context: Context,
    start_date: str | None = None,
    end_date: str | None = None,
) -> JSONResponse:
    """Spend in [start_date, end_date) (UTC days, `YYYY-MM-DD`), per day and model in
    `daily_costs`; either bound may be left out."""
    start = _midnight(start_date, "start_date") if start_date else _ALL_TIME[0]
    end = _midnight(end_date, "end_date") if end_date else _ALL_TIME[1]
    if start >= end:
        raise InvalidRequest(
            f"start_date ({start_date}) must be before end_date ({end_date}).", param="start_date"
        )
    async with context.db.read() as conn:
        groups = await video_usage(
            conn, principal.tenant_id, start=start, end=end, by_day=True, by_model=True
        )
    days: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for group in groups:
        assert group.day_start is not None
        days[group.day_start].append(
            {"name": group.model, "cost": group.amount_micros / _MICROS_PER_CENT}
        )
    return JSONResponse(
        {
            "object": "list",
            "daily_costs": [
                {"timestamp": float(day), "line_items": items} for day, items in days.items()
            ],
            "total_usage": sum(group.amount_micros for group in groups) / _MICROS_PER_CENT,
        }
    )


def _midnight(text: str, param: str) -> int:
    try:
        day = date.fromisoformat(text)
    except ValueError as error:
        raise InvalidRequest(f"{param} must be a date as YYYY-MM-DD.", param=param) from error
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
