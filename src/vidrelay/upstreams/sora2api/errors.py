"""The error mapper: which of sora2api's failures are transient (busy or blocked accounts,
never the request's fault), the message of an error body, and the ids to keep from clients."""

from __future__ import annotations

import json
import re

import httpx

from vidrelay.upstreams.base import FailureKind

_ERROR_BODY_MAX_BYTES = 64 * 1024
_TRANSIENT_ERROR = re.compile(
    r"no available|concurrency|heavy[ _]load|overload|time ?out|timed out|cloudflare|cf_shield"
    r"|\b429\b|rate limit|too many requests|\b401\b|unauthori[sz]ed|token_invalidated"
    r"|temporar|\b50[234]\b",
    re.IGNORECASE,
)
"""Errors that say nothing about the request: the upstream's accounts are busy, blocked or
expired. Another attempt (later or on another channel) can succeed, so they never fail a job."""
UPSTREAM_IDS = re.compile(
    r"\b(?:task|gen|cameo|ch|media|file|post)_[A-Za-z0-9]{6,}\b|\bs_[0-9a-f]{32}\b"
)
CODE_FOR_KIND = {
    FailureKind.AUTH: "upstream_auth_failed",
    FailureKind.RATE_LIMITED: "upstream_rate_limited",
    FailureKind.UNAVAILABLE: "upstream_unavailable",
    FailureKind.REJECTED: "upstream_rejected",
}


def is_transient(message: str) -> bool:
    return _TRANSIENT_ERROR.search(message) is not None


async def error_detail(response: httpx.Response) -> str:
    """The message of an error body (`{"error": {"message"}}` or FastAPI's `{"detail"}`)."""
    body = b""
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= _ERROR_BODY_MAX_BYTES:
                break
    except (httpx.HTTPError, httpx.StreamError):
        pass  # what arrived is enough for a message
    text = body[:_ERROR_BODY_MAX_BYTES].decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return text.strip()[:300]
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for name in ("detail", "message", "error"):
            if isinstance(parsed.get(name), str):
                return str(parsed[name])
    return ""
