"""A real webhook receiver on loopback: records every request; paths choose its behaviour."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.e2e.server import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    port: int = field(default_factory=free_port)
    received: list[Received] = field(default_factory=list)
    failures_left: dict[str, int] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def on(self, path: str) -> list[Received]:
        return [item for item in self.received if item.path == path]

    async def _record(self, request: Request) -> Received:
        item = Received(request.url.path, dict(request.headers), await request.body())
        self.received.append(item)
        return item

    async def ok(self, request: Request) -> Response:
        await self._record(request)
        return PlainTextResponse("ok")

    async def flaky(self, request: Request) -> Response:
        """500 while `failures_left[path]` lasts, then 200."""
        await self._record(request)
        left = self.failures_left.get(request.url.path, 0)
        if left > 0:
            self.failures_left[request.url.path] = left - 1
            return PlainTextResponse("try later", status_code=500)
        return PlainTextResponse("ok")

    async def hang(self, request: Request) -> Response:
        await self._record(request)
        await asyncio.sleep(30)
        return PlainTextResponse("too late")

    async def redirect(self, request: Request) -> Response:
        await self._record(request)
        return RedirectResponse(f"http://127.0.0.1:{self.port}/ok", status_code=307)

    def start(self) -> None:
        app = Starlette(
            routes=[
                Route("/ok", self.ok, methods=["POST"]),
                Route("/flaky/{name}", self.flaky, methods=["POST"]),
                Route("/hang", self.hang, methods=["POST"]),
                Route("/redirect", self.redirect, methods=["POST"]),
            ]
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "receiver did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
