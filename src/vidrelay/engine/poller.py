"""Watching one upstream job until it ends: adaptive polling that never gives up too early.

Every job polls on its own schedule (`PollSchedule`: fast while young, one steady interval once
old, never sooner than the upstream asks), and every request goes through its channel's gate, so
thousands of jobs poll concurrently while each channel sees a bounded number of requests at once.
An upstream 429 only slows a job down; other failed polls back off and fail the job only after
`max_poll_errors` in a row; a job still unfinished at its deadline times out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from vidrelay.domain.channels import Channel
from vidrelay.domain.poll_schedule import PollSchedule
from vidrelay.engine.health import ChannelHealth
from vidrelay.metrics import EngineMetrics
from vidrelay.upstreams.base import (
    FailureKind,
    Upstream,
    UpstreamError,
    UpstreamJobLost,
    UpstreamState,
)


@dataclass(frozen=True)
class Binding:
    """A job as submitted: the channel, the key of the pool that submitted it, the upstream id."""

    channel: Channel
    adapter: Upstream
    key: str
    upstream_job_id: str
    submitted_at: float


class Outcome(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"
    LOST = "lost"
    TIMED_OUT = "timed_out"
    STOPPED = "stopped"


@dataclass(frozen=True)
class WatchResult:
    outcome: Outcome
    error_code: str = ""
    error_message: str = ""
    """Why, for `FAILED`: the upstream's own words (the engine cleans them)."""


Pause = Callable[[float], Awaitable[bool]]
"""Sleep that returns True when the runner is stopping."""


@dataclass
class Poller:
    health: ChannelHealth
    pause: Pause
    deadline_s: float
    max_errors: int
    metrics: EngineMetrics

    async def watch(
        self,
        binding: Binding,
        gate: asyncio.Semaphore,
        schedule: PollSchedule,
        on_running: Callable[[int | None], None],
    ) -> WatchResult:
        """Poll until the job ends; `on_running` hears every poll that finds it running, with
        its progress (0 to 99) when the upstream tells it."""
        deadline_at = binding.submitted_at + self.deadline_s
        delay = schedule.delay(time.time() - binding.submitted_at)
        errors = 0
        while True:
            if await self.pause(min(delay, max(0.0, deadline_at - time.time()))):
                return WatchResult(Outcome.STOPPED)
            if time.time() >= deadline_at:
                return WatchResult(Outcome.TIMED_OUT)
            try:
                async with gate, self.metrics.upstream_request(binding.channel.name, "poll"):
                    status = await binding.adapter.poll(binding.upstream_job_id, binding.key)
            except UpstreamJobLost:
                return WatchResult(Outcome.LOST)
            except UpstreamError as error:
                if error.kind is FailureKind.RATE_LIMITED:
                    delay = schedule.backoff(errors + 1, error.retry_after_s)
                    continue
                await self.health.record_failure(binding.channel, binding.key, error)
                errors += 1
                if errors >= self.max_errors:
                    return WatchResult(Outcome.FAILED, error.code, error.message)
                delay = schedule.backoff(errors, error.retry_after_s)
                continue
            errors = 0
            await self.health.record_success(binding.channel.name, binding.key)
            if status.state is UpstreamState.COMPLETED:
                return WatchResult(Outcome.COMPLETED)
            if status.state is UpstreamState.FAILED:
                return WatchResult(
                    Outcome.FAILED,
                    status.error_code or "generation_failed",
                    status.error_message or "The upstream failed to generate the video.",
                )
            on_running(None if status.progress is None else max(0, min(status.progress, 99)))
            delay = schedule.delay(time.time() - binding.submitted_at, status.poll_after_s)
