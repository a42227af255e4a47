"""The status mapper: a task body (`data` of a query answer) as state, progress, the reason of
a failure and where the finished video is.

Kling's words are `submitted`, `processing`, `succeed` and `failed`; it gives no progress
number, so progress follows the word. A failure's reason is `task_status_msg` (the answer's
top-level `message` stays "SUCCEED" even then).
"""

from __future__ import annotations

import re
from typing import Any

from vidrelay.upstreams.base import UpstreamState

_STATES = {
    "submitted": UpstreamState.RUNNING,
    "processing": UpstreamState.RUNNING,
    "succeed": UpstreamState.COMPLETED,
    "failed": UpstreamState.FAILED,
}
_PROGRESS = {"submitted": 5, "processing": 50, "succeed": 100}
_MODERATION_WORDS = re.compile(
    r"risk|sensitive|secur|moderat|policy|violat|inappropriate|prohibit|风控|敏感|违规", re.I
)


def _word(status: object) -> str | None:
    return status.strip().lower() if isinstance(status, str) else None


def state_for_status(status: object) -> UpstreamState:
    """Kling's word, case-insensitively; an unknown or missing word counts as running (a new
    word then delays a job until the engine's deadline instead of failing a paid job)."""
    word = _word(status)
    return _STATES.get(word, UpstreamState.RUNNING) if word else UpstreamState.RUNNING


def progress_for_status(status: object) -> int | None:
    word = _word(status)
    return _PROGRESS.get(word) if word else None


def failure_reason(task: dict[str, Any]) -> str | None:
    reason = task.get("task_status_msg")
    return reason if isinstance(reason, str) and reason.strip() else None


def failure_code(reason: str | None) -> str:
    """`moderation_blocked` when the reason speaks of the platform's content risk control."""
    if reason and _MODERATION_WORDS.search(reason):
        return "moderation_blocked"
    return "generation_failed"


def video_url(task: dict[str, Any]) -> str | None:
    """`task_result.videos[0].url`: a CDN link that expires (and is deleted after 30 days)."""
    url = _first_video(task).get("url")
    if isinstance(url, str) and url.lower().startswith(("http://", "https://")):
        return url
    return None


def video_id(task: dict[str, Any]) -> str | None:
    """`task_result.videos[0].id`: Kling's own id of the video, what an extension names."""
    found = _first_video(task).get("id")
    if isinstance(found, bool) or not isinstance(found, str | int) or not str(found).strip():
        return None
    return str(found).strip()


def _first_video(task: dict[str, Any]) -> dict[str, Any]:
    result = task.get("task_result")
    videos = result.get("videos") if isinstance(result, dict) else None
    first = videos[0] if isinstance(videos, list) and videos else None
    return first if isinstance(first, dict) else {}
