"""The error mapper: what an error body (or a failed job) says, and the upstream ids that must
not reach a client even when an upstream quotes one we never saw."""

from __future__ import annotations

import re
from typing import Any

_ERROR_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
# Upstream job ids (`video_68d7…`, `task_9f…`, UUIDs), e.g. in the refusal of a submit. A
# digit is required, so words such as `task_failed` stay.
UPSTREAM_ID = re.compile(
    r"\b(?:video|vid|task|job|gen|req)_(?=[A-Za-z_-]*[0-9])[A-Za-z0-9_-]{6,}"
    r"|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
    re.IGNORECASE,
)


def error_details(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """(code, message) from `{"error": {...}}`, `{"error": "..."}` or a relay's own fields."""
    error = body.get("error")
    code: object = None
    message: object = None
    if isinstance(error, dict):
        code, message = error.get("code") or error.get("type"), error.get("message")
    elif isinstance(error, str):
        message = error
    for field_name in ("fail_reason", "failure_reason", "message", "detail"):
        if isinstance(message, str) and message.strip():
            break
        message = body.get(field_name)
    clean_code = code if isinstance(code, str) and _ERROR_CODE.match(code) else None
    clean_message = message if isinstance(message, str) and message.strip() else None
    return clean_code, clean_message
