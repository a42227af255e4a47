"""The one interface every upstream adapter implements.

An adapter turns vidrelay's normalised request into an upstream's wire protocol and back. The
engine only ever talks to upstreams through this cut; the api never does. What an adapter must
guarantee:

- `submit` returns the upstream's own job id, which never reaches a client;
- errors are `UpstreamError`s that say whether trying again (or elsewhere) can help, with a
  message fit for the client (no upstream host, id or key in it);
- `fetch_content` streams into a file, never holding a whole video in memory;
- nothing it logs or raises contains an upstream key.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol

from vidrelay.domain.catalog import NormalisedRequest


@dataclass(frozen=True)
class UpstreamRequest:
    job_id: str
    request: NormalisedRequest
    reference_image: bytes | None


class UpstreamState(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True)
class UpstreamStatus:
    state: UpstreamState
    progress: int | None = None
    error_code: str | None = None
    error_message: str | None = None
    poll_after_s: float | None = None


class UpstreamError(Exception):
    def __init__(self, message: str, *, code: str = "upstream_error", retryable: bool = False):
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable


class UpstreamJobLost(UpstreamError):
    """The upstream no longer knows the job (e.g. the local renderer restarted): submit again."""

    def __init__(self, message: str = "the upstream lost the job") -> None:
        super().__init__(message, code="upstream_job_lost", retryable=True)


class Upstream(Protocol):
    name: str
    cost_per_second_micros: int
    """What a second of video costs us on this channel, so operators see their margin."""

    async def submit(self, request: UpstreamRequest) -> str:
        """Start the job upstream; return the upstream's job id."""
        ...

    async def poll(self, upstream_job_id: str) -> UpstreamStatus:
        """The job's state upstream. Unknown upstream states count as still running."""
        ...

    async def fetch_content(self, upstream_job_id: str, variant: str, destination: Path) -> bool:
        """Stream one asset (`video`, `thumbnail`, `spritesheet`) into `destination`.

        Returns False when the upstream does not offer that variant (the engine then derives
        previews from the video itself).
        """
        ...

    async def release(self, upstream_job_id: str) -> None:
        """The engine is done with this job (collected or failed): free what the adapter holds."""
        ...

    async def close(self) -> None: ...
