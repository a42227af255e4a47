"""The error mapper: Kling's service `code` (0 is success, whatever the HTTP status) as a
`FailureKind` and the code a client sees.

commonInfo's table, and what it makes the engine do:

| code       | HTTP | meaning                               | kind, code                        |
|------------|------|---------------------------------------|-----------------------------------|
| 1000-1004  | 401  | bad or expired token, no token        | AUTH, upstream_auth               |
| 1100       | 429  | account exception                     | AUTH, upstream_account_error      |
| 1101, 1102 | 429  | in arrears; resource pack used up     | AUTH, upstream_balance_exhausted  |
| 1103       | 403  | no access to the API or model         | AUTH, upstream_access_denied      |
| 1200, 1201 | 400  | invalid request parameters            | REJECTED, invalid_parameter       |
| 1202       | 404  | invalid request method                | UNAVAILABLE, upstream_not_found   |
| 1203       | 404  | no such resource (e.g. model)         | UNAVAILABLE, upstream_not_found   |
| 1300, 1301 | 400  | platform / content security policy    | REJECTED, moderation_blocked      |
| 1302, 1303 | 429  | rate limit, concurrency over the pack | RATE_LIMITED, rate_limit_exceeded |
| 1304       | 429  | IP whitelisting policy                | AUTH, upstream_ip_not_allowed     |
| 5000-5002  | 5xx  | internal error, maintenance, timeout  | UNAVAILABLE, upstream_unavailable |

1101/1102 come with HTTP 429 but are no rate limit: waiting does not refill a balance, so the
key is benched (AUTH) with its own code. 1304 is listed beside the rate limits, but no wait lifts
an IP policy either. 1202/1203 on a submit mean this channel is set up wrong (a base URL or a
`model_map` naming a model the account lacks): another channel may serve the job, so they are
no refusal of it. On a query, 1203 (or 1200/1201 saying the task does not exist) is a lost task.
"""

from __future__ import annotations

import re
from typing import Any

from vidrelay.upstreams.base import FailureKind, failure_kind_for_status

_CODES: dict[int, tuple[FailureKind, str]] = {
    **dict.fromkeys(range(1000, 1005), (FailureKind.AUTH, "upstream_auth")),
    1100: (FailureKind.AUTH, "upstream_account_error"),
    1101: (FailureKind.AUTH, "upstream_balance_exhausted"),
    1102: (FailureKind.AUTH, "upstream_balance_exhausted"),
    1103: (FailureKind.AUTH, "upstream_access_denied"),
    1200: (FailureKind.REJECTED, "invalid_parameter"),
    1201: (FailureKind.REJECTED, "invalid_parameter"),
    1202: (FailureKind.UNAVAILABLE, "upstream_not_found"),
    1203: (FailureKind.UNAVAILABLE, "upstream_not_found"),
    1300: (FailureKind.REJECTED, "moderation_blocked"),
    1301: (FailureKind.REJECTED, "moderation_blocked"),
    1302: (FailureKind.RATE_LIMITED, "rate_limit_exceeded"),
    1303: (FailureKind.RATE_LIMITED, "rate_limit_exceeded"),
    1304: (FailureKind.AUTH, "upstream_ip_not_allowed"),
    **dict.fromkeys(range(5000, 5003), (FailureKind.UNAVAILABLE, "upstream_unavailable")),
}
_RESOURCE_MISSING = 1203
_TASK_MISSING = re.compile(r"task.{0,40}(not (be )?found|not exist|no such)", re.I | re.S)


def service_code(body: dict[str, Any] | None) -> int | None:
    """The answer's `code` as an int (also when sent as a string); None when absent."""
    code = body.get("code") if body is not None else None
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.strip().isdigit():
        return int(code)
    return None


def service_message(body: dict[str, Any] | None) -> str | None:
    message = body.get("message") if body is not None else None
    return message if isinstance(message, str) and message.strip() else None


def classify(code: int | None, http_status: int) -> tuple[FailureKind, str]:
    """The kind and client code of an error answer (a code outside the table by its family,
    else by the HTTP status; a 2xx that is no success is an answer we cannot read)."""
    if code is not None and code in _CODES:
        return _CODES[code]
    if code is not None and 1000 <= code < 1200:
        return FailureKind.AUTH, "upstream_auth"
    if code is not None and 1200 <= code < 1300:
        return FailureKind.REJECTED, "invalid_parameter"
    if code is not None and 5000 <= code < 6000:
        return FailureKind.UNAVAILABLE, "upstream_unavailable"
    if 200 <= http_status < 300:
        return FailureKind.UNAVAILABLE, "upstream_bad_response"
    kind = failure_kind_for_status(http_status)
    return kind, f"upstream_{kind.value}"


def is_task_missing(code: int | None, message: str | None) -> bool:
    """A query's answer that says the task does not exist (lost: submit it again)."""
    if code == _RESOURCE_MISSING:
        return True
    return code in (1200, 1201) and message is not None and bool(_TASK_MISSING.search(message))
