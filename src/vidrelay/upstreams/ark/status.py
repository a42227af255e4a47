"""The status mapper: a task of `GET /api/v3/contents/generations/tasks/{id}` as our state.

Ark's words are `queued`, `running`, `succeeded`, `failed`, `cancelled` and `expired` (a task
that waited past its `execution_expires_after`). It gives no progress number, so progress
comes from the word: queued 5, running 50, succeeded 100. A word it adds later counts as
running, with no progress: a paid job then waits (until the engine's deadline) rather than
fails.
"""

from __future__ import annotations

from typing import Any

from vidrelay.upstreams.base import UpstreamState

_STATES: dict[str, tuple[UpstreamState, int | None]] = {
    "queued": (UpstreamState.RUNNING, 5),
    "pending": (UpstreamState.RUNNING, 5),
    "running": (UpstreamState.RUNNING, 50),
    "processing": (UpstreamState.RUNNING, 50),
    "succeeded": (UpstreamState.COMPLETED, 100),
    "failed": (UpstreamState.FAILED, None),
    "cancelled": (UpstreamState.FAILED, None),
    "canceled": (UpstreamState.FAILED, None),
    "expired": (UpstreamState.FAILED, None),
}
ENDED_WITHOUT_REASON = {
    "cancelled": ("cancelled", "The upstream job was cancelled before it finished."),
    "canceled": ("cancelled", "The upstream job was cancelled before it finished."),
    "expired": ("expired", "The upstream job expired in the provider's queue before it ran."),
}
"""(code, message) of a task that ended without an `error` saying why."""


def status_word(body: dict[str, Any]) -> str:
    status = body.get("status")
    return status.strip().lower() if isinstance(status, str) else ""


def state_for_status(status: object) -> tuple[UpstreamState, int | None]:
    """(state, progress) of a status word, case-insensitively; unknown words are running."""
    word = status.strip().lower() if isinstance(status, str) else ""
    return _STATES.get(word, (UpstreamState.RUNNING, None))


def video_url(body: dict[str, Any]) -> str | None:
    """`content.video_url` of a succeeded task: a signed URL that expires (24 h, say the docs)."""
    content = body.get("content")
    url = content.get("video_url") if isinstance(content, dict) else None
    if isinstance(url, str) and url.lower().startswith(("https://", "http://")):
        return url
    return None
