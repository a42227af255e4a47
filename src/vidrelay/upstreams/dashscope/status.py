"""The status mapper: a task body of `GET /api/v1/tasks/{task_id}` as `UpstreamStatus` parts.

DashScope says `output.task_status`: PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED or UNKNOWN
(the task id is unknown or has expired: never a success; the adapter treats it as a lost job).
It gives no progress number, so progress comes from the word. The finished video is at
`output.video_url`, a signed URL on another host that expires (24 h).
"""

from __future__ import annotations

from typing import Any

from vidrelay.upstreams.base import UpstreamState

UNKNOWN_TASK = "unknown"
CANCELED = frozenset({"canceled", "cancelled"})
_STATES = {
    "pending": UpstreamState.RUNNING,
    "running": UpstreamState.RUNNING,
    "succeeded": UpstreamState.COMPLETED,
    "failed": UpstreamState.FAILED,
    **dict.fromkeys(CANCELED, UpstreamState.FAILED),
}
_PROGRESS = {"pending": 5, "running": 50, "succeeded": 100}


def status_word(body: dict[str, Any]) -> str | None:
    """`output.task_status`, lower-cased; None when missing or not text."""
    output = body.get("output")
    status = output.get("task_status") if isinstance(output, dict) else None
    return status.strip().lower() if isinstance(status, str) else None


def state_for_status(word: object) -> UpstreamState:
    """A status word as our state, case-insensitively; an unknown word (or none) is RUNNING,
    so a new word in DashScope's vocabulary delays a job instead of failing a paid one.
    (`UNKNOWN` is not decided here: the adapter treats it as a lost task.)"""
    if not isinstance(word, str):
        return UpstreamState.RUNNING
    return _STATES.get(word.strip().lower(), UpstreamState.RUNNING)


def progress_for_status(word: object) -> int | None:
    """Queued 5, running 50, done 100; None for a word we do not know."""
    return _PROGRESS.get(word.strip().lower()) if isinstance(word, str) else None


def video_url(body: dict[str, Any]) -> str | None:
    output = body.get("output")
    url = output.get("video_url") if isinstance(output, dict) else None
    if isinstance(url, str) and url.lower().startswith(("http://", "https://")):
        return url
    return None


def task_id(body: dict[str, Any]) -> str | None:
    """`output.task_id` of a submit answer, when it is a non-empty string."""
    output = body.get("output")
    value = output.get("task_id") if isinstance(output, dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else None
