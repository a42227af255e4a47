"""The job's life: internal statuses and their names on the wire (DESIGN.md §2)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import StrEnum

from vidrelay.domain.catalog import NormalisedRequest


class JobStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED)


UNFINISHED = (JobStatus.QUEUED, JobStatus.IN_PROGRESS)


class StatusStyle(StrEnum):
    """Which vocabulary a client reads: the relay document's or the official SDKs'."""

    RELAY = "relay"
    OPENAI = "openai"


_RELAY_NAMES = {JobStatus.QUEUED: "pending", JobStatus.IN_PROGRESS: "processing"}


def wire_status(status: JobStatus, style: StatusStyle) -> str:
    if style is StatusStyle.RELAY:
        return _RELAY_NAMES.get(status, status.value)
    return status.value


def new_video_id() -> str:
    """`video_` + 48 hex characters, the shape of the official ids."""
    return "video_" + secrets.token_hex(24)


CONTENT_VARIANTS = ("video", "thumbnail", "spritesheet")


@dataclass(frozen=True)
class SubmissionIntent:
    """A submission a worker was about to make: written before it sends the request, cleared
    once the upstream's id is recorded. Still there when a job is claimed again, it means the
    last run died in between: the upstream may hold a job nobody will collect."""

    channel: str
    key_ref: str | None
    token: str
    """Unique to this submission; sent where the protocol lets a client name its task, so the
    upstream can be asked for it afterwards."""


@dataclass(frozen=True)
class JobRecord:
    """A job as stored: vidrelay's own view, never the upstream's ids or keys on the wire."""

    id: str
    tenant_id: str
    key_id: str
    request: NormalisedRequest
    """What was accepted, as validated: priced from it, and handed to the adapter as is."""
    callback_url: str | None
    has_reference: bool
    price_micros: int
    status: JobStatus
    progress: int
    error_code: str | None
    error_message: str | None
    created_at: int
    completed_at: int | None
    expires_at: int | None
    channel: str | None
    upstream_job_id: str | None
    attempts: int
    remixed_from_video_id: str | None
    upstream_key_ref: str | None = None
    submitted_at: int | None = None
    intent: SubmissionIntent | None = None
    orphaned_submissions: int = 0
    """Submissions a crash may have left running upstream, unpaid for by anyone but us."""
    upstream_video_ref: str | None = None
    """The upstream's own reference of the collected video where it differs from the job's
    id (Kling's video id, Veo's file URI): an extension of it names it so."""

    @property
    def model(self) -> str:
        return self.request.model

    @property
    def route_class(self) -> str:
        return self.request.route_class.value

    @property
    def seconds(self) -> str:
        return self.request.seconds

    @property
    def size(self) -> str:
        return self.request.size

    @property
    def prompt(self) -> str:
        return self.request.prompt
