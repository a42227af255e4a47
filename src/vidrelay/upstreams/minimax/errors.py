"""The error mapper: MiniMax answers a refusal with HTTP 200 and `base_resp.status_code` != 0,
so the body's code, not the HTTP status, says what went wrong.

Codes from https://platform.minimax.io/docs/api-reference/errorcode (1013 is not listed there
any more; older pages name it an internal error, and it is kept as such).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from vidrelay.upstreams.base import FailureKind

INVALID_PARAMS = 2013
"""On a status query, whose only parameter is the task id, this means the task is unknown."""
UPSTREAM_ID = re.compile(r"\b\d{12,}\b")
"""MiniMax task and file ids are long digit runs (`106916112212032`): hidden from clients even
when a message quotes one we never saw."""


@dataclass(frozen=True)
class CodeMeaning:
    kind: FailureKind
    code: str
    lead: str
    """How a client reads it; the provider's own words follow."""


_UNAVAILABLE = CodeMeaning(
    FailureKind.UNAVAILABLE, "upstream_unavailable", "The upstream is unavailable"
)
_RATE_LIMITED = CodeMeaning(
    FailureKind.RATE_LIMITED, "upstream_rate_limited", "The upstream is rate limiting requests"
)
_REFUSED_KEY = CodeMeaning(FailureKind.AUTH, "upstream_auth", "The upstream refused the key")
_MODERATED = CodeMeaning(
    FailureKind.REJECTED,
    "moderation_blocked",
    "The upstream's moderation blocked this request as sensitive content",
)
_INVALID = CodeMeaning(
    FailureKind.REJECTED, "upstream_invalid_parameters", "The upstream refused the parameters"
)
MEANINGS: dict[int, CodeMeaning] = {
    1000: _UNAVAILABLE,  # unknown error
    1001: _UNAVAILABLE,  # request timeout
    1013: _UNAVAILABLE,  # internal error (older pages)
    1024: _UNAVAILABLE,  # internal error
    1033: _UNAVAILABLE,  # system error
    1002: _RATE_LIMITED,  # rate limit
    1039: _RATE_LIMITED,  # token limit
    1041: _RATE_LIMITED,  # connection limit
    2045: _RATE_LIMITED,  # rate growth limit
    2056: _RATE_LIMITED,  # usage limit of the plan's 5-hour window
    1004: _REFUSED_KEY,  # not authorized
    2049: _REFUSED_KEY,  # invalid api key
    1008: CodeMeaning(
        FailureKind.AUTH,
        "upstream_balance_exhausted",
        "The upstream account's balance is exhausted",
    ),
    1026: _MODERATED,  # input new_sensitive
    1027: CodeMeaning(  # output new_sensitive
        FailureKind.REJECTED,
        "moderation_blocked",
        "The upstream's moderation blocked the generated video as sensitive content",
    ),
    1042: CodeMeaning(
        FailureKind.REJECTED,
        "invalid_prompt",
        "The upstream refused the prompt for invisible or illegal characters",
    ),
    INVALID_PARAMS: _INVALID,
}


def meaning(code: int) -> CodeMeaning:
    """What a non-zero code means; an unknown one is a refusal of the request in the 2xxx
    (parameter) range, else the upstream's own trouble."""
    known = MEANINGS.get(code)
    if known is not None:
        return known
    if 2000 <= code < 3000:
        return CodeMeaning(
            FailureKind.REJECTED, "upstream_rejected", "The upstream refused the request"
        )
    return _UNAVAILABLE


def base_resp(body: dict[str, Any]) -> tuple[int, str]:
    """(status_code, status_msg) of an answer; (0, "") when it carries none."""
    block = body.get("base_resp")
    if not isinstance(block, dict):
        return 0, ""
    code = block.get("status_code")
    message = block.get("status_msg")
    if isinstance(code, bool) or not isinstance(code, int | str):
        code = 0
    try:
        number = int(code)
    except ValueError:
        number = 0
    return number, message.strip() if isinstance(message, str) else ""


def describe(meaning_of_code: CodeMeaning, code: int, provider_message: str) -> str:
    """The client's text: our lead, then the provider's words and code (cleaned by the caller)."""
    if provider_message:
        return f"{meaning_of_code.lead}: {provider_message} ({code})."
    return f"{meaning_of_code.lead} ({code})."
