"""`GET /v1/usage/videos`: a tenant's own video usage, in the shape of OpenAI's usage API.

The grouping happens in SQL (`store/usage.py`), so the answer is one query whatever the window.
`seconds` and `amount_usd` count only the jobs that did not fail: a failed job is refunded, so
the tenant paid nothing for it. A job still queued or running is counted as paid (it is
charged); should it fail later, the refund takes it out of a later answer.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from vidrelay.api.auth import Authenticated, Context
from vidrelay.domain.errors import InvalidRequest
from vidrelay.domain.pricing import micros_to_usd
from vidrelay.store.usage import VideoUsage, video_usage

router = APIRouter(prefix="/v1")

DEFAULT_WINDOW_S = 30 * 86_400
GROUP_KEYS = ("day", "model")
"""The default grouping; `operation` (create, remix, extension, edit) is asked for."""
ALLOWED_GROUP_KEYS = (*GROUP_KEYS, "operation")
LAST_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z: a day any `date` can name

Timestamp = Annotated[int | None, Query(ge=0, le=LAST_TIMESTAMP)]


@router.get("/usage/videos")
async def video_usage_report(
    principal: Authenticated,
    context: Context,
    start_time: Timestamp = None,
    end_time: Timestamp = None,
    group_by: Annotated[list[str] | None, Query()] = None,
) -> JSONResponse:
    """`group_by` is comma-separated or repeated; empty (`group_by=`) means one total row."""
    end = end_time if end_time is not None else int(time.time())
    start = start_time if start_time is not None else max(0, end - DEFAULT_WINDOW_S)
    if start >= end:
        raise InvalidRequest(
            f"start_time ({start}) must be before end_time ({end}).", param="start_time"
        )
    keys = _group_keys(group_by)
    async with context.db.read() as conn:
        usage = await video_usage(
            conn,
            principal.tenant_id,
            start=start,
            end=end,
            by_day="day" in keys,
            by_model="model" in keys,
            by_operation="operation" in keys,
        )
    return JSONResponse(
        {
            "object": "list",
            "start_time": start,
            "end_time": end,
            "data": [_result(group) for group in usage],
            "total": {
                "jobs": sum(group.jobs for group in usage),
                "seconds": sum(group.seconds for group in usage),
                "amount_usd": str(micros_to_usd(sum(group.amount_micros for group in usage))),
            },
        }
    )


def _group_keys(group_by: list[str] | None) -> set[str]:
    if group_by is None:
        return set(GROUP_KEYS)
    keys = {part.strip() for value in group_by for part in value.split(",")} - {""}
    unknown = sorted(keys - set(ALLOWED_GROUP_KEYS))
    if unknown:
        raise InvalidRequest(
            f"group_by {', '.join(map(repr, unknown))} is not supported; allowed values: "
            f"{', '.join(ALLOWED_GROUP_KEYS)}.",
            param="group_by",
        )
    return keys


def _result(group: VideoUsage) -> dict[str, Any]:
    day = None
    if group.day_start is not None:
        day = datetime.fromtimestamp(group.day_start, UTC).date().isoformat()
    operation = {"operation": group.operation} if group.operation is not None else {}
    return {
        "object": "usage.videos.result",
        "day": day,
        "model": group.model,
        **operation,
        "jobs": group.jobs,
        "completed": group.completed,
        "failed": group.failed,
        "in_progress": group.in_progress,
        "seconds": group.seconds,
        "amount_usd": str(micros_to_usd(group.amount_micros)),
    }
