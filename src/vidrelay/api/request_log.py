"""Every request gets an id on all its log lines, and one cheap access line.

The id comes from the client's `X-Request-Id` when it is usable (visible ASCII, at most
`MAX_REQUEST_ID` characters: it is echoed in a header and written in logs), else it is made
here; either way it is echoed in the response's `x-request-id`, so a client reporting a problem
can name the lines that belong to it. It is bound with structlog's contextvars, so every line
written while the request runs carries it, uvicorn's included.

The access line replaces uvicorn's, which printed the path with its query: a signed `video_url`
is a credential. Here the route template (`/v1/videos/{video_id}/content`) is logged, or for a
path no route matched the path alone, never the query and never a header.
"""

from __future__ import annotations

import os
import re
import time

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_REQUEST_ID = 128
_USABLE_REQUEST_ID = re.compile(rb"[\x21-\x7e]{1,%d}" % MAX_REQUEST_ID)
_REQUEST_ID_HEADER = b"x-request-id"

access_log = structlog.get_logger("vidrelay.access")


def request_id_from(scope: Scope) -> str:
    """The client's `X-Request-Id` when usable, else a fresh one (32 hex digits)."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == _REQUEST_ID_HEADER:
            if _USABLE_REQUEST_ID.fullmatch(value):
                return value.decode("ascii")
            break
    return os.urandom(16).hex()


class RequestLogMiddleware:
    """The outermost middleware: the id is bound before anything else logs, and the access
    line measures everything the server does for the request."""

    def __init__(self, app: ASGIApp, access_log_enabled: bool) -> None:
        self.app = app
        self.access_log_enabled = access_log_enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        header = (_REQUEST_ID_HEADER, request_id.encode("ascii"))
        bound = structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        status = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.access_log_enabled:
                route = scope.get("route")
                access_log.info(
                    "request",
                    method=scope["method"],
                    route=getattr(route, "path", None) or scope["path"],
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )
        # Unbound only after a normal end: an exception goes on to uvicorn, whose traceback
        # line belongs to the request too (uvicorn runs each request in its own task).
        structlog.contextvars.reset_contextvars(**bound)
