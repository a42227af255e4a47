"""The status mapper: an upstream's job body as `UpstreamStatus` parts (state, progress,
where the finished video is, when to poll again)."""

from __future__ import annotations

import math
import re
from typing import Any

import httpx

from vidrelay.retry_after import retry_after_s
from vidrelay.upstreams.base import UpstreamState

_STATES = {
    **dict.fromkeys(
        ("queued", "pending", "not_start", "not_started", "submitted", "processing",
         "in_progress", "running"),
        UpstreamState.RUNNING,
    ),
    **dict.fromkeys(
        ("succeeded", "success", "completed", "complete", "done"), UpstreamState.COMPLETED
    ),
    **dict.fromkeys(
        ("failed", "failure", "error", "cancelled", "canceled", "expired"), UpstreamState.FAILED
    ),
}  # fmt: skip


def state_for_status(status: object) -> UpstreamState:
    """Map an upstream's status word to ours, case-insensitively.

    Unknown or missing words count as running: a new word in some vendor's vocabulary then
    delays a job (until the engine's own deadline) instead of failing a paid job. `expired`
    is a failure: the engine only polls unfinished jobs, so it means the job never finished.
    """
    if not isinstance(status, str):
        return UpstreamState.RUNNING
    word = re.sub(r"[\s-]+", "_", status.strip().lower())
    return _STATES.get(word, UpstreamState.RUNNING)


def video_url(body: dict[str, Any]) -> str | None:
    """Where a body names the finished video: `video_url`/`url` at the top or in `output`."""
    places: list[object] = [body]
    for nested in ("output", "result", "data"):
        value = body.get(nested)
        places.append(value[0] if isinstance(value, list) and value else value)
    for place in places:
        if not isinstance(place, dict):
            continue
        for field_name in ("video_url", "url", "download_url"):
            url = place.get(field_name)
            if isinstance(url, str) and url.lower().startswith(("http://", "https://")):
                return url
    return None


def progress_percent(value: object) -> int | None:
    """0-100 from a percent, a 0-1 fraction or a string such as `"45%"`; None if unreadable."""
    if value is None or isinstance(value, bool):
        return None
    percent_sign = False
    if isinstance(value, str):
        text = value.strip()
        percent_sign = text.endswith("%")
        value = text.rstrip("%")
    if not isinstance(value, str | int | float):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    if 0 < number < 1 and not percent_sign:
        number *= 100
    return round(min(100.0, max(0.0, number)))


def poll_after_s(headers: httpx.Headers) -> float | None:
    milliseconds = headers.get("openai-poll-after-ms")
    if milliseconds:
        try:
            value = float(milliseconds) / 1000
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value
    return retry_after_s(headers.get("retry-after"))
