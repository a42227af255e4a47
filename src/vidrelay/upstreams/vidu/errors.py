"""The error mapper: what Vidu's error answers and failed tasks mean to the engine.

Vidu says why in its body, not only in the HTTP status: `{"code": 400, "reason":
"CreditInsufficient", "message": "insufficient credits", "metadata": {}}` (the `reason` is the
error code of https://platform.vidu.com/docs/error-code), and a failed task carries the same
codes in `err_code`. A 400 may thus be a bad parameter (the job fails), a moderation refusal
(the job fails, with Vidu's reason), an exhausted balance (that key is benched), or a model
this account cannot use (another channel may serve the job).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from vidrelay.upstreams.base import FailureKind

MODERATION_CODE = "moderation_blocked"
BALANCE_CODE = "upstream_balance_exhausted"

_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}")
# Task ids Vidu may quote that are not the one we hide by name (a refused submit names the
# task it would have made): its ids are long decimal numbers, sometimes UUIDs.
UPSTREAM_ID = re.compile(
    r"\b[0-9]{12,}\b|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
    re.IGNORECASE,
)

_RATE_LIMITED = frozenset({"TooManyRequests", "QuotaExceeded", "SystemThrottling"})
_REFUSED_KEY = frozenset({"Unauthorized", "Forbidden"})
_MODERATION = frozenset(
    {"AuditSubmitIllegal", "TaskPromptPolicyViolation", "CreationPolicyViolation"}
)
_BALANCE = frozenset({"CreditInsufficient"})
# Not this request's fault, nor every channel's: try later or elsewhere.
_ELSEWHERE = frozenset(
    {"ModelUnavailable", "OperationInProcess", "InternalServiceFailure", "Canceled"}
)
TASK_NOT_FOUND = "TaskNotFound"

DESCRIPTIONS = {
    "BadRequest": "the request is invalid",
    "FieldLacking": "a required field is missing or empty",
    "FieldUnwanted": "a field is not accepted here",
    "FieldItemCountOutOfRange": "a field has too many or too few items",
    "FieldInvalid": "a parameter did not pass validation",
    "PageSizeOutOfRange": "the image is too large, of an unsupported format or too elongated",
    "ImageDownloadFailure": "the image could not be downloaded",
    "ImageFormatInvalid": "the image format is not supported",
    "ImageCheckBodyJointsFailed": "no person could be detected in the image",
    "ImageCheckFaceFailed": "no face could be detected in the image",
    "ImageObjectsUndetected": "the person or face in the image is hidden too much",
    "AuditSubmitIllegal": "the input did not pass the safety review",
    "TaskPromptPolicyViolation": "the prompt did not pass the safety review",
    "CreationPolicyViolation": "the generated video did not pass the safety review",
    "CreditInsufficient": "the upstream account has run out of credits",
    "ModelUnavailable": "the model is not available",
    "UserCancelled": "the task was cancelled upstream",
    "OperationInProcess": "the upstream is still processing a request",
    "InternalServiceFailure": "the upstream had an internal failure",
}


@dataclass(frozen=True)
class ViduError:
    """What an error answer or a failed task says: Vidu's error code and its message."""

    reason: str | None
    message: str | None


def error_details(body: dict[str, Any] | None) -> ViduError:
    """The code (`reason`, or `err_code`, or a textual `code`) and message of a body."""
    if body is None:
        return ViduError(None, None)
    reason: object = body.get("reason") or body.get("err_code")
    if not reason and isinstance(body.get("code"), str):
        reason = body["code"]
    message: object = None
    for field_name in ("message", "msg", "error", "detail"):
        message = body.get(field_name)
        if isinstance(message, str) and message.strip():
            break
    return ViduError(
        reason if isinstance(reason, str) and _CODE.fullmatch(reason) else None,
        message if isinstance(message, str) and message.strip() else None,
    )


def kind_for(reason: str | None, status: int) -> tuple[FailureKind | None, str | None]:
    """(kind, our code) for an error answer; (None, None) leaves both to the HTTP status."""
    if reason in _BALANCE:
        return FailureKind.AUTH, BALANCE_CODE
    if reason in _RATE_LIMITED:
        return FailureKind.RATE_LIMITED, None
    if reason in _REFUSED_KEY:
        return FailureKind.AUTH, None
    if reason in _MODERATION:
        return FailureKind.REJECTED, MODERATION_CODE
    if reason in _ELSEWHERE:
        return FailureKind.UNAVAILABLE, None
    if status in (404, 405, 499):
        # No such path (a wrong base URL) or a request cut off: another channel may serve it.
        return FailureKind.UNAVAILABLE, None
    return None, None


def describe(error: ViduError, fallback: str) -> str:
    """A sentence for a client: Vidu's message (or our reading of its code), then the code."""
    text = error.message or (DESCRIPTIONS.get(error.reason, "") if error.reason else "")
    text = text or fallback
    if error.reason and error.reason not in text:
        text = f"{text} ({error.reason})"
    return text[0].upper() + text[1:] if text else text


def task_failure(err_code: object) -> tuple[str, str]:
    """(our code, a message) for a task that ended `failed` with `err_code`."""
    reason = err_code if isinstance(err_code, str) and _CODE.fullmatch(err_code) else None
    if reason in _MODERATION:
        code = MODERATION_CODE
    elif reason in _BALANCE:
        code = BALANCE_CODE
    elif reason == "UserCancelled":
        code = "upstream_cancelled"
    else:
        code = "generation_failed"
    described = DESCRIPTIONS.get(reason or "")
    if described:
        message = f"The upstream failed the video: {described} ({reason})."
    elif reason:
        message = f"The upstream failed to generate the video ({reason})."
    else:
        message = "The upstream failed to generate the video."
    return code, message
