"""The status mapper: a `GET /v1/query/video_generation` answer as a state, a progress and
the finished video's file id."""

from __future__ import annotations

import math
from typing import Any

from vidrelay.upstreams.base import UpstreamState

_STATES = {
    "preparing": UpstreamState.RUNNING,
    "queueing": UpstreamState.RUNNING,
    "queued": UpstreamState.RUNNING,
    "processing": UpstreamState.RUNNING,
    "success": UpstreamState.COMPLETED,
    "fail": UpstreamState.FAILED,
    "failed": UpstreamState.FAILED,
}
_PROGRESS = {"preparing": 5, "queueing": 5, "queued": 5, "processing": 50, "success": 100}


def _word(status: object) -> str:
    return status.strip().lower() if isinstance(status, str) else ""


def state_for_status(status: object) -> UpstreamState:
    """MiniMax's words (`Preparing`, `Queueing`, `Processing`, `Success`, `Fail`), any case.

    An unknown or missing word counts as running: a new word delays a job until the engine's
    deadline instead of failing a paid one.
    """
    return _STATES.get(_word(status), UpstreamState.RUNNING)


def progress_percent(body: dict[str, Any]) -> int | None:
    """A number the answer gives (MiniMax documents none), else one from the status word:
    queued-like 5, processing 50, done 100; None for a word it does not know."""
    number = body.get("progress")
    if isinstance(number, int | float) and not isinstance(number, bool) and math.isfinite(number):
        return round(min(100.0, max(0.0, float(number))))
    return _PROGRESS.get(_word(body.get("status")))


def file_id(body: dict[str, Any]) -> str | None:
    """The finished video's file id (a string in the query answer, a number elsewhere)."""
    value = body.get("file_id")
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip()
    return text or None
