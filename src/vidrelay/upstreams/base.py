"""The one interface every upstream adapter implements.

An adapter turns vidrelay's normalised request into an upstream's wire protocol and back. The
engine only ever talks to upstreams through this cut; the api never does. One adapter object
serves one channel; the engine picks the channel's key for each call and passes it in, so the
key that submitted a job is the key that polls and collects it. What an adapter must guarantee:

- `submit` returns the upstream's own job id, which never reaches a client;
- errors are `UpstreamError`s whose `kind` says what went wrong (the engine decides from it
  whether to fail the job, fail over, slow down or trip a breaker), with a message fit for the
  client: no upstream host, URL, id or key in it (`clean_upstream_message` helps);
- `fetch_content` streams into a file, never holding a whole video in memory;
- nothing it logs or raises contains an upstream key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

from vidrelay.domain.catalog import NormalisedRequest
from vidrelay.domain.channels import OperationSupport


@dataclass(frozen=True)
class CharacterInput:
    """A character a create names: its id (ours, `char_…`), name and stored clip."""

    id: str
    name: str
    clip: Path


@dataclass(frozen=True)
class UpstreamRequest:
    job_id: str
    request: NormalisedRequest
    reference_image: bytes | None
    upstream_model: str = ""
    """The model name the upstream knows (the channel's `model_map` applied); empty = same."""
    submission_token: str = ""
    """Unique to this submission. An adapter whose protocol lets the client name a task sends
    it, so that `find_submission` can ask for the task after a crash lost its id."""
    source_video: Path | None = None
    """A remix's, extension's or edit's source as a stored MP4 (an upload, or the source job's
    video); `request.source` says which video it is and, when this channel made it, the
    upstream's own id of it."""
    characters: tuple[CharacterInput, ...] = ()

    @property
    def model(self) -> str:
        return self.upstream_model or self.request.model


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
    """The upstream's own hint (`Retry-After`, `openai-poll-after-ms`): poll no sooner."""
    video_ref: str | None = None
    """On completion, the upstream's own reference of the video where it is not the job's id
    (Kling's video id, Veo's file URI): kept on the job, so an extension can name it."""


class FailureKind(StrEnum):
    REJECTED = "rejected"
    """The upstream refused this request (a 4xx such as a moderation block or bad parameter):
    another channel would refuse it too, so the job fails."""
    AUTH = "auth"
    """The key was refused (401/403): try another key or channel; the key's breaker trips."""
    RATE_LIMITED = "rate_limited"
    """429: slow down; try another key or channel for a submit, never fail a poll for it."""
    UNAVAILABLE = "unavailable"
    """Connect error, timeout, 5xx, a broken stream: try again later or elsewhere."""
    LOST = "lost"
    """The upstream no longer knows the job: it must be submitted again."""
    CONTENT_UNAVAILABLE = "content_unavailable"
    """The finished video cannot be downloaded (yet): retry, fail only when it stays gone."""


class UpstreamError(Exception):
    def __init__(
        self,
        message: str,
        *,
        code: str = "upstream_error",
        kind: FailureKind = FailureKind.REJECTED,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.kind = kind
        self.retry_after_s = retry_after_s

    @property
    def retryable(self) -> bool:
        """Trying again (later, with another key or on another channel) can help."""
        return self.kind is not FailureKind.REJECTED


class UpstreamJobLost(UpstreamError):
    """The upstream no longer knows the job (e.g. the local renderer restarted): submit again."""

    def __init__(self, message: str = "the upstream lost the job") -> None:
        super().__init__(message, code="upstream_job_lost", kind=FailureKind.LOST)


def failure_kind_for_status(status_code: int) -> FailureKind:
    """How an HTTP error status from an upstream is treated."""
    if status_code in (401, 403):
        return FailureKind.AUTH
    if status_code == 429:
        return FailureKind.RATE_LIMITED
    if status_code == 408 or status_code >= 500:
        return FailureKind.UNAVAILABLE
    return FailureKind.REJECTED


@dataclass(frozen=True)
class KeyProbe:
    key_hint: str
    """The key shown as `sk-up…ab12`, never whole."""
    ok: bool
    detail: str


@dataclass(frozen=True)
class ProbeResult:
    """What `vidrelay channels test` reports: reachability and auth, per key of the pool."""

    reachable: bool
    detail: str
    keys: list[KeyProbe] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return self.reachable and bool(self.keys) and all(key.ok for key in self.keys)


class Upstream(Protocol):
    name: str
    cost_per_second_micros: int
    """What a second of video costs us on this channel, so operators see their margin."""
    operations: OperationSupport
    """The remixes, extensions, edits and characters it can submit (the engine routes only
    those to it); a create is always supported."""

    async def submit(self, request: UpstreamRequest, key: str) -> str:
        """Start the job upstream (a create, or `request.request.operation`); return the
        upstream's job id."""
        ...

    async def poll(self, upstream_job_id: str, key: str) -> UpstreamStatus:
        """The job's state upstream. Unknown upstream states count as still running."""
        ...

    async def fetch_content(
        self, upstream_job_id: str, variant: str, destination: Path, key: str
    ) -> bool:
        """Stream one asset (`video`, `thumbnail`, `spritesheet`) into `destination`.

        Returns False when the upstream does not offer that variant (the engine then derives
        previews from the video itself). A video that cannot be had (yet) raises an
        `UpstreamError` of kind `CONTENT_UNAVAILABLE` (or `UNAVAILABLE` for a broken transfer).
        """
        ...

    async def release(self, upstream_job_id: str) -> None:
        """The engine is done with this job (collected or failed): free what the adapter holds."""
        ...

    async def probe(self, key: str) -> KeyProbe:
        """Check reachability and that `key` is accepted, submitting nothing billable.

        Raises `UpstreamError` (kind `UNAVAILABLE`) when the upstream cannot be reached.
        """
        ...

    async def close(self) -> None: ...


@runtime_checkable
class FindsSubmissions(Protocol):
    """An adapter that can tell, after the fact, whether a submission reached its upstream.

    A worker that dies between sending a submission and recording the upstream's id leaves a
    job upstream that nobody collects (and that the operator pays for). The run after it asks
    an adapter with this method before submitting again; for the others it can only count a
    possibly orphaned submission.
    """

    async def find_submission(self, request: UpstreamRequest, key: str) -> str | None:
        """The upstream job id that submitting `request` (its `submission_token`) made, or None
        when the upstream has no such job (nothing was made: submit again)."""
        ...
