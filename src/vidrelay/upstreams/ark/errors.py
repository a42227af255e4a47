"""The error mapper: Ark's error codes (the body's `error.code`, not only the HTTP status) as
failure kinds, and the task ids that must not reach a client.

Ark answers `{"error": {"code", "message", "param", "type"}}` (its gateway may answer in the
Volcengine OpenAPI shape, `{"ResponseMetadata": {"Error": {"Code", "Message"}}}`; both are
read). What the codes mean for vidrelay (ModelArk "Common error codes"), first match wins:

- `AccountOverdueError` (403; any code naming `Overdue`), `SetLimitExceeded` (429, the
  inference limit the account set itself): AUTH, `upstream_balance_exhausted`;
- `*SensitiveContentDetected*`, `*RiskDetection*` (400): REJECTED, `moderation_blocked`;
- `AuthenticationError` (401), `AccessDenied` (403), any 401: AUTH;
- `RateLimitExceeded.*`, `*RateLimitExceeded`, `QuotaExceeded`, `ServerOverloaded` (429),
  any 429: RATE_LIMITED (`Retry-After` read when sent);
- `InvalidEndpoint.*` (`ClosedEndpoint` is a 400), `InvalidEndpointOrModel.*`, `ModelNotOpen`,
  any 404/405 on submit; `InternalServiceError`, any 5xx or 408: UNAVAILABLE;
- `MissingParameter`, `InvalidParameter` and any other 4xx: REJECTED.

`QuotaExceeded` (a quota of the model, per minute or day, not the balance) is waited out like
a rate limit; `SetLimitExceeded` stays until the operator raises the limit they set, so it
benches the key like an empty balance.
An endpoint that is closed or a model the account has not opened is the channel's problem,
not the request's: another channel may serve it. An overdue balance will not clear by waiting
or by another key of the same account being tried at once; the key is benched like a refused
one (AUTH) with a code that says why.
"""

from __future__ import annotations

import re
from typing import Any

from vidrelay.upstreams.base import FailureKind, failure_kind_for_status

BALANCE_EXHAUSTED = "upstream_balance_exhausted"
MODERATION_BLOCKED = "moderation_blocked"
# Ark task ids (`cgt-20250331175019-68d9t`), e.g. quoted in a message about another task.
TASK_ID = re.compile(r"\bcgt-[0-9]{8,}-[A-Za-z0-9]+\b")
_MODERATION = re.compile(r"SensitiveContent|RiskDetection|ContentSecurity", re.IGNORECASE)
_RATE_LIMIT = re.compile(r"^(?:\w*RateLimitExceeded|QuotaExceeded|ServerOverloaded)\b")
_CHANNEL_PROBLEM = re.compile(r"^(?:InvalidEndpoint|ModelNotOpen|InvalidEndpointOrModel)\b")
_UNAVAILABLE = re.compile(r"^(?:InternalServiceError|ServiceUnavailable|ServerError)\b")
_AUTH = re.compile(r"^(?:AuthenticationError|AccessDenied|InvalidAccountStatus)\b")
_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,127}$")


def error_details(body: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """(code, message) of an error body, or of a failed task's `error`."""
    if body is None:
        return None, None
    error = body.get("error")
    if not isinstance(error, dict):
        metadata = body.get("ResponseMetadata")
        error = metadata.get("Error") if isinstance(metadata, dict) else None
    if not isinstance(error, dict):
        return None, None
    code = error.get("code", error.get("Code"))
    message = error.get("message", error.get("Message"))
    clean_code = code if isinstance(code, str) and _CODE.match(code) else None
    clean_message = message if isinstance(message, str) and message.strip() else None
    return clean_code, clean_message


def is_moderation(code: str | None) -> bool:
    return bool(code and _MODERATION.search(code))


def classify(status: int, code: str | None) -> tuple[FailureKind, str | None]:
    """The failure kind of an error answer, and our code for it (None: the kind's default)."""
    word = code or ""
    if "Overdue" in word or word == "SetLimitExceeded":
        return FailureKind.AUTH, BALANCE_EXHAUSTED
    if is_moderation(word):
        return FailureKind.REJECTED, MODERATION_BLOCKED
    if status == 401 or _AUTH.match(word):
        return FailureKind.AUTH, None
    if status == 429 or _RATE_LIMIT.match(word):
        return FailureKind.RATE_LIMITED, None
    if status in (404, 405) or _CHANNEL_PROBLEM.match(word) or _UNAVAILABLE.match(word):
        return FailureKind.UNAVAILABLE, None
    return failure_kind_for_status(status), None
