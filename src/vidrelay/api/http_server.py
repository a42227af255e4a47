"""The HTTP server `vidrelay serve` runs: uvicorn, with limits on what a client's headers and
its silence may cost.

uvicorn's default parser (httptools) takes headers of any size and count, and waits for them
forever: one client could hold megabytes per connection, or hundreds of connections by sending
a byte now and then. `limited_http_protocol` is its protocol with three bounds: a header block
above `max_bytes` or with more than `max_count` fields is answered 431 and the connection
closed, and a connection whose header block is not complete `timeout_s` after it opened (or
after its first byte, for the next request on a kept-alive connection) is closed. A body that
stalls is `BodyStallMiddleware`'s business (`api/body_stall.py`), as uvicorn has no knob for it.
"""

from __future__ import annotations

import asyncio
import json
import signal
from dataclasses import dataclass
from typing import Any, ClassVar

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from vidrelay.settings import Settings

LINGER_S = 2.0
"""How long a refused connection's input is still read (and dropped) before it is closed."""


@dataclass(frozen=True)
class HeaderLimits:
    max_bytes: int
    max_count: int
    timeout_s: float


class HeadersRefused(Exception):
    """Raised from a parser callback: the header block is over a limit (answered 431)."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with `HeaderLimits`; use `limited_http_protocol`."""

    limits: ClassVar[HeaderLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_headers = True
        self._raw_header_bytes = 0  # received while awaiting headers: bounds what the parser holds
        self._header_bytes = 0  # of the fields parsed so far: exact, however the bytes arrived
        self._header_count = 0
        self._headers_refused = False
        self._discarding = False
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._discarding:
            return
        if self._awaiting_headers:
            self._raw_header_bytes += len(data)
        super().data_received(data)
        if (
            self._awaiting_headers
            and self._raw_header_bytes > self.limits.max_bytes
            and not self._discarding
            and not self.transport.is_closing()
        ):
            self._refuse_headers()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = self._header_count = 0
        if self._header_timer is None:
            self._start_header_timer()

    def on_url(self, url: bytes) -> None:
        self._count_header_bytes(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count > self.limits.max_count:
            self._headers_refused = True
            raise HeadersRefused
        self._count_header_bytes(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._raw_header_bytes = 0
        self._stop_header_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._awaiting_headers = True
        self._raw_header_bytes = 0

    def send_400_response(self, msg: str) -> None:
        """The parser stopped: on a limit of ours (a callback raised) that is a 431."""
        if self._headers_refused:
            self._refuse_headers()
        else:
            super().send_400_response(msg)

    def _count_header_bytes(self, count: int) -> None:
        self._header_bytes += count
        if self._header_bytes > self.limits.max_bytes:
            self._headers_refused = True
            raise HeadersRefused

    def _refuse_headers(self) -> None:
        """Answer 431, then close gently: closing a socket with unread input makes the kernel
        reset the connection, and the client would lose the answer. So the write side is shut
        and what still arrives is dropped unread for `LINGER_S`."""
        self._stop_header_timer()
        self._discarding = True
        if self.cycle is None or self.cycle.response_complete:  # never inside another answer
            self.transport.write(_header_refusal(self.limits))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)

    def _start_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.limits.timeout_s, self._headers_timed_out)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_timed_out(self) -> None:
        self._header_timer = None
        if self._awaiting_headers and not self.transport.is_closing():
            self.transport.close()


def _header_refusal(limits: HeaderLimits) -> bytes:
    body = json.dumps(
        {
            "error": {
                "message": f"The request headers are too large: the limit is {limits.max_bytes} "
                f"bytes in all and {limits.max_count} fields.",
                "type": "invalid_request_error",
                "param": None,
                "code": "request_headers_too_large",
            }
        }
    ).encode()
    head = (
        "HTTP/1.1 431 Request Header Fields Too Large\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


def limited_http_protocol(limits: HeaderLimits) -> type[LimitedHttpToolsProtocol]:
    """The protocol class to give uvicorn (`http=`), bound to these limits."""
    return type("LimitedHttpToolsProtocol", (LimitedHttpToolsProtocol,), {"limits": limits})


def server_config(app: ASGIApp, settings: Settings, host: str, port: int) -> uvicorn.Config:
    """How `vidrelay serve` serves `app`: header limits, and uvicorn's lines through vidrelay's
    logger (`log_config=None`: the app configured logging), but not its access line, which
    prints the query (signed links) and no request id: the app writes its own
    (`api/request_log.py`)."""
    limits = HeaderLimits(
        max_bytes=settings.max_header_bytes,
        max_count=settings.max_headers,
        timeout_s=settings.header_timeout_s,
    )
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        log_config=None,
        access_log=False,
        http=limited_http_protocol(limits),
    )


def run_server(app: ASGIApp, settings: Settings, host: str, port: int) -> None:
    """Serve `app` the way `vidrelay serve` does (the benchmarks' reference server)."""
    exit_cleanly_after_sigterm()
    uvicorn.Server(server_config(app, settings, host, port)).run()


def exit_cleanly_after_sigterm() -> None:
    """uvicorn stops gracefully on SIGTERM, then raises it again once its own handler is gone:
    this handler makes that an exit with status 0, as after SIGINT, not a death by signal."""
    signal.signal(signal.SIGTERM, _exit_after_stop)


def _exit_after_stop(_signum: int, _frame: object) -> None:
    raise SystemExit(0)
