"""The status mapper: a long-running operation (`GET /v1beta/{name}`) as our state.

Gemini has no status word: an operation is running until `done` is true, then it carries
either `error` (a `google.rpc.Status`: numeric `code`, `message`) or `response.
generateVideoResponse`, whose `generatedSamples[0].video.uri` is the video, or, when the
safety filters dropped it, no sample but `raiMediaFilteredCount` / `raiMediaFilteredReasons`.
So the "words" read here are `done` (a boolean; a word where the boolean belongs counts as not
done, never as finished) and the error's status. Progress is 50 while running unless the
operation's metadata gives a number (`progressPercent`), 100 once done.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from vidrelay.upstreams.base import UpstreamState
from vidrelay.upstreams.gemini.errors import looks_like_moderation, status_word

RUNNING_PROGRESS = 50
MODERATION_MESSAGE = "The video was blocked by the provider's safety filters."
NO_VIDEO_MESSAGE = "The upstream finished without a video."


@dataclass(frozen=True)
class Operation:
    """What an operation says, its messages as the provider wrote them (not yet cleaned)."""

    state: UpstreamState
    progress: int | None = None
    video_uri: str | None = None
    error_code: str | None = None
    error_message: str | None = None


def is_done(value: object) -> bool:
    """`done` read case-insensitively: true (or `"true"`) only; absent, false and any other
    word are not done."""
    if isinstance(value, bool):
        return value
    return isinstance(value, str) and value.strip().lower() == "true"


def read_operation(body: dict[str, Any]) -> Operation:
    error = body.get("error")
    if isinstance(error, dict) and (error.get("message") or error.get("code")):
        return _failed(error)
    if not is_done(body.get("done")):
        metadata = body.get("metadata")
        number = progress_percent(
            metadata.get("progressPercent") if isinstance(metadata, dict) else None
        )
        return Operation(UpstreamState.RUNNING, RUNNING_PROGRESS if number is None else number)
    result = _video_response(body.get("response"))
    uri = _first_video_uri(result)
    if uri is not None:
        return Operation(UpstreamState.COMPLETED, 100, video_uri=uri)
    reasons = [text for text in result.get("raiMediaFilteredReasons") or [] if _text(text)]
    filtered = result.get("raiMediaFilteredCount")
    if reasons or (isinstance(filtered, int | float) and filtered > 0):
        message = " ".join(reasons) if reasons else MODERATION_MESSAGE
        return Operation(UpstreamState.FAILED, 100, None, "moderation_blocked", message)
    return Operation(UpstreamState.FAILED, 100, None, "generation_failed", NO_VIDEO_MESSAGE)


def progress_percent(value: object) -> int | None:
    """0-100 from a number or numeric text; None if unreadable."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(str(value).strip().rstrip("%"))
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    return round(min(100.0, max(0.0, number)))


def _failed(error: dict[str, Any]) -> Operation:
    message = error.get("message") if _text(error.get("message")) else None
    word = status_word(error.get("status"), error.get("code"))
    if message is not None and looks_like_moderation(message):
        code = "moderation_blocked"
    else:
        code = word.lower() if word else "generation_failed"
    return Operation(
        UpstreamState.FAILED,
        100,
        None,
        code,
        message or "The upstream failed to generate the video.",
    )


def _video_response(response: object) -> dict[str, Any]:
    if not isinstance(response, dict):
        return {}
    nested = response.get("generateVideoResponse")
    return nested if isinstance(nested, dict) else response


def _first_video_uri(result: dict[str, Any]) -> str | None:
    """`generatedSamples[0].video.uri` (the REST API; `generatedVideos` as some relays
    rename it), as written: absolute, or a path the adapter resolves against the API root."""
    for field_name in ("generatedSamples", "generatedVideos"):
        samples = result.get(field_name)
        if not isinstance(samples, list):
            continue
        for sample in samples:
            video = sample.get("video") if isinstance(sample, dict) else None
            uri = video.get("uri") if isinstance(video, dict) else None
            if isinstance(uri, str) and uri.strip():
                return uri.strip()
    return None


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())
