"""Collecting a finished video: stream it from the upstream into media storage.

The video is retried (a broken transfer, a CDN that is not ready yet) and the job fails only
when it stays unavailable after `attempts` tries. Thumbnail and spritesheet come from the
upstream when it offers them, and are derived from the video otherwise.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog

from vidrelay.engine.poller import Binding, Pause
from vidrelay.media.previews import previews_from_mp4
from vidrelay.media.storage import ASSET_FILES
from vidrelay.metrics import EngineMetrics
from vidrelay.upstreams.base import UpstreamError

log = structlog.get_logger(__name__)


class ContentGone(Exception):
    """The upstream finished but its video could not be had; the last error says why."""

    def __init__(self, error: UpstreamError) -> None:
        super().__init__(error.message)
        self.error = error


async def collect(
    binding: Binding,
    scratch: Path,
    gate: asyncio.Semaphore,
    pause: Pause,
    *,
    attempts: int,
    retry_s: float,
    metrics: EngineMetrics,
) -> dict[str, Path] | None:
    """Download the assets into `scratch`; None when the runner is stopping meanwhile."""
    await asyncio.to_thread(scratch.mkdir, parents=True, exist_ok=True)
    video = scratch / ASSET_FILES["video"]
    for attempt in range(attempts):
        try:
            async with gate, metrics.upstream_request(binding.channel.name, "download"):
                if not await binding.adapter.fetch_content(
                    binding.upstream_job_id, "video", video, binding.key
                ):
                    raise UpstreamError("The upstream finished without a video.")
            break
        except UpstreamError as error:
            if not error.retryable or attempt == attempts - 1:
                raise ContentGone(error) from error
            log.info("content_retry", attempt=attempt + 1, code=error.code)
            if await pause(retry_s * 2**attempt):
                return None
    produced = {"video": video}
    for variant in ("thumbnail", "spritesheet"):
        destination = scratch / ASSET_FILES[variant]
        try:
            async with gate, metrics.upstream_request(binding.channel.name, "download"):
                offered = await binding.adapter.fetch_content(
                    binding.upstream_job_id, variant, destination, binding.key
                )
        except UpstreamError:
            offered = False  # previews are ours to make
        if offered:
            produced[variant] = destination
    if "thumbnail" not in produced or "spritesheet" not in produced:
        thumbnail = scratch / ASSET_FILES["thumbnail"]
        spritesheet = scratch / ASSET_FILES["spritesheet"]
        try:
            await asyncio.to_thread(previews_from_mp4, video, thumbnail, spritesheet)
        except Exception as error:  # whatever the decoder says, the upstream's file is bad
            unreadable = UpstreamError(
                "The upstream's video could not be read.", code="content_invalid"
            )
            raise ContentGone(unreadable) from error
        produced["thumbnail"], produced["spritesheet"] = thumbnail, spritesheet
    return produced
