"""The error mapper: what DashScope's error body (`{"code", "message", "request_id"}`) or a
failed task (`output.code`, `output.message`) means for the engine.

The body's `code` decides, not only the HTTP status: `Arrearage` comes as a 400 but is an
exhausted account (the key is benched, the job goes elsewhere), `Throttling.*` is a rate limit
whatever the status, `DataInspectionFailed` is a moderation refusal (the job fails, refunded).
An unknown code falls back on the HTTP status.

| DashScope code                                   | kind         | our code                   |
|--------------------------------------------------|--------------|----------------------------|
| InvalidApiKey, AccessDenied*, Model.AccessDenied | AUTH         | upstream_auth              |
| Arrearage                                        | AUTH         | upstream_balance_exhausted |
| Throttling, Throttling.*                         | RATE_LIMITED | upstream_rate_limited      |
| DataInspectionFailed, DataInspection*, IPInfringementSuspect | REJECTED | moderation_blocked |
| InvalidParameter*, InvalidURL*, InvalidFile*     | REJECTED     | invalid_parameter          |
| ModelNotFound, "Model not exist"                 | UNAVAILABLE  | upstream_model_not_found   |
| InternalError*, SystemError, ServiceUnavailable  | UNAVAILABLE  | upstream_unavailable       |
"""

from __future__ import annotations

import re
from typing import Any

from vidrelay.upstreams.base import FailureKind, failure_kind_for_status

BALANCE_EXHAUSTED = "upstream_balance_exhausted"
MODERATION_BLOCKED = "moderation_blocked"
# DashScope task and request ids are UUIDs; a message may quote one we never saw.
UPSTREAM_ID = re.compile(
    r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE
)
_MODERATION = re.compile(r"^(?:DataInspection|IPInfringement)", re.IGNORECASE)
_AUTH = re.compile(r"^(?:InvalidApiKey|AccessDenied|Model\.AccessDenied|Workspace\.AccessDenied)")
_BAD_PARAMETER = re.compile(r"^(?:InvalidParameter|InvalidURL|InvalidFile|BadRequest)")
_UNAVAILABLE = re.compile(r"^(?:InternalError|SystemError|ServiceUnavailable|RequestTimeOut)")
_MODEL_MISSING = re.compile(r"model\s+(?:does\s+)?not\s+exist|ModelNotFound", re.IGNORECASE)


def error_details(body: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """(code, message) of an error body or of a failed task's `output`."""
    if body is None:
        return None, None
    output = body.get("output")
    places = [body, output] if isinstance(output, dict) else [body]
    code = next((p["code"] for p in places if _text(p.get("code"))), None)
    message = next((p["message"] for p in places if _text(p.get("message"))), None)
    return code, message


def error_meaning(code: str | None, message: str | None, status: int) -> tuple[FailureKind, str]:
    """What an error answer means: its failure kind and the code a client or operator sees."""
    code = code or ""
    if code == "Arrearage":
        return FailureKind.AUTH, BALANCE_EXHAUSTED
    if code.startswith("Throttling"):
        return FailureKind.RATE_LIMITED, "upstream_rate_limited"
    if _AUTH.match(code):
        return FailureKind.AUTH, "upstream_auth"
    if _MODERATION.match(code):
        return FailureKind.REJECTED, MODERATION_BLOCKED
    if code == "ModelNotFound" or _MODEL_MISSING.search(message or ""):
        # A model map naming a model this account or region lacks: another channel may serve.
        return FailureKind.UNAVAILABLE, "upstream_model_not_found"
    if _BAD_PARAMETER.match(code):
        return FailureKind.REJECTED, "invalid_parameter"
    if _UNAVAILABLE.match(code):
        return FailureKind.UNAVAILABLE, "upstream_unavailable"
    kind = failure_kind_for_status(status)
    return kind, f"upstream_{kind.value}"


def failure_code(code: str | None) -> str:
    """The code a failed task ends with: a moderation refusal says so; anything else is a
    generation failure."""
    return MODERATION_BLOCKED if code and _MODERATION.match(code) else "generation_failed"


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())
