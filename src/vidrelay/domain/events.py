"""A job's timeline (DESIGN.md §5): what happened to it, in order, each with a time, so an
operator answers "what happened to this job" from one page.

Events are written in the transaction that makes the change they record (the accept, the
submission, the terminal transition, a webhook attempt), never in one of their own, so the
timeline and the job cannot disagree. Their details are small JSON objects meant for people:
money as dollar strings, a key only as its hint, upstream words already cleaned.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from vidrelay.domain.pricing import usd_text


class EventKind(StrEnum):
    ACCEPTED = "accepted"
    """Accepted and charged: `price_usd` (0 when billing is off)."""
    SUBMITTED = "submitted"
    """Taken by the upstream of `channel`, with the `key_hint` of the key that submitted it."""
    UPSTREAM_STATUS = "upstream_status"
    """The upstream's status or progress moved (never written for a poll that changes nothing)."""
    FAILOVER = "failover"
    """`from_channel` failed to take or keep the job (`code`, `message`); it goes on to
    `to_channel`, or back to the queue when that is null."""
    COLLECTED = "collected"
    """The assets are in the media store: `assets`, each with its `bytes`."""
    COMPLETED = "completed"
    FAILED = "failed"
    REFUNDED = "refunded"
    EXPIRED = "expired"
    """Past `expires_at`: its media was deleted."""
    DELETED = "deleted"
    WEBHOOK_ATTEMPT = "webhook_attempt"
    """One attempt of one delivery: the destination, its status code or error, the next try."""


@dataclass(frozen=True)
class JobEvent:
    job_id: str
    kind: EventKind
    details: Mapping[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.time)
    """Unix seconds, as precise as the jobs table's `created_ts`."""
    id: int | None = None
    """Its place in the timeline, once stored."""


def accepted(job_id: str, price_micros: int, at: float) -> JobEvent:
    return JobEvent(job_id, EventKind.ACCEPTED, {"price_usd": usd_text(price_micros)}, at)


def submitted(job_id: str, channel: str, key_hint: str | None) -> JobEvent:
    return JobEvent(job_id, EventKind.SUBMITTED, {"channel": channel, "key_hint": key_hint})


def failover(
    job_id: str, from_channel: str, to_channel: str | None, code: str, message: str
) -> JobEvent:
    details = {"from_channel": from_channel, "to_channel": to_channel}
    return JobEvent(job_id, EventKind.FAILOVER, {**details, "code": code, "message": message})


def collected(job_id: str, asset_bytes: Mapping[str, int]) -> JobEvent:
    assets = [{"name": name, "bytes": size} for name, size in sorted(asset_bytes.items())]
    return JobEvent(job_id, EventKind.COLLECTED, {"assets": assets})


def completed(job_id: str, at: float) -> JobEvent:
    return JobEvent(job_id, EventKind.COMPLETED, {}, at)


def failed(job_id: str, code: str, message: str, at: float) -> JobEvent:
    return JobEvent(job_id, EventKind.FAILED, {"code": code, "message": message}, at)


def refunded(job_id: str, amount_micros: int, at: float) -> JobEvent:
    return JobEvent(job_id, EventKind.REFUNDED, {"amount_usd": usd_text(amount_micros)}, at)


def webhook_attempt(
    job_id: str,
    delivery_id: str,
    url: str,
    status_code: int | None,
    error: str | None,
    next_attempt_at: float | None,
) -> JobEvent:
    details = {"delivery_id": delivery_id, "url": url, "status_code": status_code}
    retry = None if next_attempt_at is None else round(next_attempt_at, 3)
    return JobEvent(
        job_id,
        EventKind.WEBHOOK_ATTEMPT,
        {**details, "error": error, "next_attempt_at": retry},
    )


@dataclass(frozen=True)
class UpstreamObservation:
    """What one poll saw: the upstream's state (vidrelay's word for it) and progress."""

    status: str
    progress: int

    def moved_from(self, last: UpstreamObservation | None) -> bool:
        """Worth an event: another status, or progress beyond what was recorded (progress
        only rises on the job, so an upstream that wavers back adds nothing)."""
        return last is None or self.status != last.status or self.progress > last.progress

    def event(self, job_id: str) -> JobEvent:
        details = {"status": self.status, "progress": self.progress}
        return JobEvent(job_id, EventKind.UPSTREAM_STATUS, details)
