"""Webhook events and their delivery schedule (Standard Webhooks; the official API's events).

Pure rules: event types, ids, secrets, and when the next attempt is due.
"""

from __future__ import annotations

import base64
import secrets
from enum import StrEnum

from vidrelay.domain.jobs import JobStatus

MAX_ATTEMPTS = 12
"""With a 30 s first delay doubling each time, attempts span about 17 hours."""


class EventType(StrEnum):
    VIDEO_COMPLETED = "video.completed"
    VIDEO_FAILED = "video.failed"


EVENT_FOR_STATUS = {
    JobStatus.COMPLETED: EventType.VIDEO_COMPLETED,
    JobStatus.FAILED: EventType.VIDEO_FAILED,
}


def new_event_id() -> str:
    return "evt_" + secrets.token_hex(16)


def new_delivery_id() -> str:
    return "whd_" + secrets.token_hex(12)


def new_endpoint_id() -> str:
    return "we_" + secrets.token_hex(12)


def new_webhook_secret() -> str:
    """`whsec_` + base64 of 24 random bytes, the format Standard Webhooks libraries read."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def retry_delay_s(attempts_made: int, base_s: float, retry_after_s: float | None = None) -> float:
    """Delay before the next attempt: base, doubling per attempt; `Retry-After` is honoured but
    never beyond the schedule's longest delay."""
    scheduled = base_s * float(2 ** (attempts_made - 1))
    if retry_after_s is None:
        return scheduled
    longest = base_s * float(2 ** (MAX_ATTEMPTS - 2))
    return min(max(retry_after_s, scheduled), longest)
