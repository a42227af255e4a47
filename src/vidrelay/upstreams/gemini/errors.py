"""The error mapper: what a Google API error body says, and what the engine does about it.

Every error answer is `{"error": {"code": <HTTP status>, "message", "status": <google.rpc
code name>, "details": [...]}}` (https://ai.google.dev/gemini-api/docs/troubleshooting). The
body decides, not only the HTTP status:

- a `google.rpc.ErrorInfo` detail whose `reason` is `API_KEY_INVALID` (or another `API_KEY_*`)
  is a refused key, although Google answers it `400 INVALID_ARGUMENT`: AUTH;
- prepaid credits that ran out (`RESOURCE_EXHAUSTED` "Your prepayment credits are depleted")
  are AUTH with code `upstream_balance_exhausted` (the key is benched, not retried in
  seconds), unlike a quota or rate limit (`RESOURCE_EXHAUSTED` otherwise): RATE_LIMITED, with
  the `google.rpc.RetryInfo` `retryDelay` (or `Retry-After`) as when to try again;
- `UNAUTHENTICATED`, `PERMISSION_DENIED` and `FAILED_PRECONDITION` (billing not enabled, a
  region without the free tier) are about the key's project: AUTH;
- `INVALID_ARGUMENT` and other 4xx are a refusal of this request (REJECTED), reported as
  `moderation_blocked` when the message speaks of safety or policy;
- 5xx (`INTERNAL`, `UNAVAILABLE`, `DEADLINE_EXCEEDED`) and 408 are UNAVAILABLE.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from vidrelay.upstreams.base import FailureKind

RPC_CODES = {
    1: "CANCELLED", 2: "UNKNOWN", 3: "INVALID_ARGUMENT", 4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND", 6: "ALREADY_EXISTS", 7: "PERMISSION_DENIED", 8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION", 10: "ABORTED", 11: "OUT_OF_RANGE", 12: "UNIMPLEMENTED",
    13: "INTERNAL", 14: "UNAVAILABLE", 15: "DATA_LOSS", 16: "UNAUTHENTICATED",
}  # fmt: skip
"""`google.rpc.Code`: an operation's `error.code` is one of these numbers."""

_WORD = re.compile(r"^[A-Z][A-Z_]{1,40}$")
_MODERATION = re.compile(
    r"safety|responsible ai|\brai\b|usage guidelines|content polic|violat|sensitive|"
    r"prohibited|inappropriate|harmful|blocked",
    re.IGNORECASE,
)
_BALANCE = re.compile(
    r"prepay|credits? (?:are|is|have been|has been) (?:depleted|exhausted)|out of credits?|"
    r"insufficient (?:balance|credit|funds)",
    re.IGNORECASE,
)
_DURATION = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)s\s*$")
# Operation and file names (`models/veo-…/operations/abc123`, `files/xyz`) that a provider's
# message may quote: they are ids of ours upstream.
UPSTREAM_ID = re.compile(r"(?:\bmodels/[\w.-]+/)?\boperations/[\w.-]+|\bfiles/[\w.-]+")


@dataclass(frozen=True)
class GoogleError:
    """An error body's parts; `word` is the `google.rpc.Code` name (`INVALID_ARGUMENT`)."""

    word: str | None = None
    message: str | None = None
    reasons: tuple[str, ...] = ()
    retry_delay_s: float | None = None


def parse_error(body: dict[str, Any] | None) -> GoogleError:
    error = body.get("error") if body is not None else None
    if isinstance(error, str) and error.strip():
        return GoogleError(message=error)
    if not isinstance(error, dict):
        return GoogleError()
    message = error.get("message")
    details = error.get("details")
    details = [detail for detail in details if isinstance(detail, dict)] if details else []
    reasons = tuple(
        str(detail["reason"]) for detail in details if isinstance(detail.get("reason"), str)
    )
    delays = [
        _duration_s(detail.get("retryDelay"))
        for detail in details
        if str(detail.get("@type", "")).endswith("google.rpc.RetryInfo")
    ]
    return GoogleError(
        word=status_word(error.get("status"), None),
        message=message if isinstance(message, str) and message.strip() else None,
        reasons=reasons,
        retry_delay_s=next((delay for delay in delays if delay is not None), None),
    )


def classify(status: int, error: GoogleError) -> tuple[FailureKind, str]:
    """(kind, code) of an error answer to a submit or a poll."""
    word = error.word or ""
    message = error.message or ""
    if any(reason.upper().startswith("API_KEY") for reason in error.reasons):
        return FailureKind.AUTH, "invalid_api_key"
    if _BALANCE.search(message) and status < 500:
        return FailureKind.AUTH, "upstream_balance_exhausted"
    if status == 401 or word == "UNAUTHENTICATED":
        return FailureKind.AUTH, "unauthenticated"
    if status == 403 or word == "PERMISSION_DENIED":
        return FailureKind.AUTH, "permission_denied"
    if word == "FAILED_PRECONDITION":
        return FailureKind.AUTH, "failed_precondition"
    if status == 429 or word == "RESOURCE_EXHAUSTED":
        return FailureKind.RATE_LIMITED, "rate_limit_exceeded"
    if status == 408 or status >= 500:
        return FailureKind.UNAVAILABLE, word.lower() or "upstream_unavailable"
    if message and looks_like_moderation(message):
        return FailureKind.REJECTED, "moderation_blocked"
    return FailureKind.REJECTED, word.lower() or "upstream_rejected"


def status_word(status: object, code: object) -> str | None:
    """The `google.rpc.Code` name, from the `status` text or else a numeric `code`."""
    if isinstance(status, str) and _WORD.match(status.strip().upper()):
        return status.strip().upper()
    if isinstance(code, int) and not isinstance(code, bool):
        return RPC_CODES.get(code)
    return None


def looks_like_moderation(message: str) -> bool:
    return bool(_MODERATION.search(message))


def _duration_s(value: object) -> float | None:
    """A `google.protobuf.Duration` in JSON (`"7s"`, `"1.5s"`) in seconds."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    seconds = float(match.group(1))
    return seconds if math.isfinite(seconds) else None
