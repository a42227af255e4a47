"""The status mapper: a task's `GET /ent/v2/tasks/{id}/creations` answer as our state,
progress and the URL of the finished video (and, for the probe, what `GET /ent/v2/credits`
says of the account).

Vidu's words are `created`, `queueing`, `processing`, `success` and `failed`; it gives no
progress number, so progress follows the word (queued 5, processing 50, done 100) unless a
body does carry one. An unknown word counts as running: a new word in Vidu's vocabulary then
delays a job until the engine's deadline instead of failing a paid one.
"""

from __future__ import annotations

import math
from typing import Any

from vidrelay.upstreams.base import UpstreamState

QUEUED_PROGRESS = 5
RUNNING_PROGRESS = 50

_STATES: dict[str, tuple[UpstreamState, int | None]] = {
    "created": (UpstreamState.RUNNING, QUEUED_PROGRESS),
    "queueing": (UpstreamState.RUNNING, QUEUED_PROGRESS),
    "queued": (UpstreamState.RUNNING, QUEUED_PROGRESS),
    "processing": (UpstreamState.RUNNING, RUNNING_PROGRESS),
    "success": (UpstreamState.COMPLETED, 100),
    "failed": (UpstreamState.FAILED, None),
}


def state_for_status(state: object) -> tuple[UpstreamState, int | None]:
    """Our state and the progress the word implies, case-insensitively; unknown: running."""
    if not isinstance(state, str):
        return UpstreamState.RUNNING, None
    return _STATES.get(state.strip().lower(), (UpstreamState.RUNNING, None))


def progress_percent(body: dict[str, Any], implied: int | None) -> int | None:
    """A `progress` number in the body (0-100), else what the word implies."""
    value = body.get("progress")
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return round(min(100.0, max(0.0, float(value))))
    return implied


def video_url(body: dict[str, Any]) -> str | None:
    """The first creation's `url` (valid for a limited time: 1 to 24 h, says Vidu)."""
    creations = body.get("creations")
    if not isinstance(creations, list):
        return None
    for creation in creations:
        if isinstance(creation, dict):
            url = creation.get("url")
            if isinstance(url, str) and url.lower().startswith(("http://", "https://")):
                return url
    return None


def credits_exhausted(body: dict[str, Any]) -> bool:
    """Whether `GET /ent/v2/credits` says the account can pay for nothing more: every package
    it lists has no credits left and none is a `concurrent` package (billed otherwise). The
    docs name the list `remaining_credits`, their example `remains`: either is read."""
    remains = body.get("remains", body.get("remaining_credits"))
    if not isinstance(remains, list) or not remains:
        return False
    for package in remains:
        if not isinstance(package, dict) or package.get("type") == "concurrent":
            return False
        left = package.get("credit_remain")
        if not isinstance(left, int | float) or isinstance(left, bool) or left > 0:
            return False
    return True
