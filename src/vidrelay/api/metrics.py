"""`/metrics`, and the HTTP families behind it: a pure ASGI middleware that counts and times
each request under its route's template, and the tiny server a `vidrelay worker` answers
scrapes with (`VIDRELAY_METRICS_PORT`), both guarded by `VIDRELAY_METRICS_TOKEN` when set."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import uvicorn
from fastapi.routing import iter_route_contexts
from prometheus_client import Counter
from prometheus_client.metrics import Histogram
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vidrelay.api.errors import error_response
from vidrelay.metrics import CONTENT_TYPE, HttpMetrics, ProcessMetrics, token_accepted

METRICS_PATH = "/metrics"
METRICS_OPERATION: dict[str, Any] = {
    "summary": "Prometheus metrics of this process",
    "description": "The text exposition format. Needs `Authorization: Bearer "
    "<VIDRELAY_METRICS_TOKEN>` when that is set.",
    "operationId": "metrics",
    "tags": ["operations"],
    "responses": {
        "200": {
            "description": "Metrics",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        "401": {"description": "Missing or wrong metrics token"},
    },
}
UNMATCHED = "unmatched"
"""The route label of a request no route answered (a 404, or refused before routing)."""
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def metrics_route(metrics: ProcessMetrics, token: str | None) -> Route:
    async def exposition(request: Request) -> Response:
        if not token_accepted(request.headers.get("authorization"), token):
            return error_response(
                401,
                "/metrics needs 'Authorization: Bearer <VIDRELAY_METRICS_TOKEN>'.",
                param=None,
                code="invalid_metrics_token",
                headers={"www-authenticate": "Bearer"},
            )
        return Response(await metrics.exposition(), media_type=CONTENT_TYPE)

    return Route(METRICS_PATH, exposition, methods=["GET"], include_in_schema=False)


class _RouteSeries:
    """One route template's label children: the histogram's made once, the counter's once per
    method and status seen."""

    __slots__ = ("counts", "duration", "requests", "template")

    def __init__(self, metrics: HttpMetrics, template: str) -> None:
        self.template = template
        self.requests: Counter = metrics.requests
        self.duration: Histogram = metrics.duration.labels(template)
        self.counts: dict[tuple[str, int], Counter] = {}

    def record(self, method: str, status: int, seconds: float) -> None:
        child = self.counts.get((method, status))
        if child is None:
            known = method if method in _METHODS else "other"
            child = self.counts[(method, status)] = self.requests.labels(
                self.template, known, str(status)
            )
        child.inc()
        self.duration.observe(seconds)


class HttpMetricsMiddleware:
    """Counts every HTTP request under the template of the route that answered it (read back
    from the scope the router filled in), so 100 video ids are one series."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self._metrics = metrics
        self._series: dict[int, _RouteSeries] | None = None
        self._unmatched = _RouteSeries(metrics, UNMATCHED)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts: an exception escaped

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            self._series_of(scope).record(scope["method"], status, time.perf_counter() - started)

    def _series_of(self, scope: Scope) -> _RouteSeries:
        if self._series is None:  # the routes are complete once requests arrive
            self._series = self._route_series(scope["app"].routes)
        series = self._series
        return (
            series.get(id(scope.get("route")))
            or series.get(id(scope.get("endpoint")))
            or self._unmatched
        )

    def _route_series(self, routes: list[BaseRoute]) -> dict[int, _RouteSeries]:
        """Keyed by the identity of what the router leaves in the scope (routes compare by
        value and do not hash): the route (FastAPI's routes) or the endpoint (plain Starlette
        routes, mounts)."""
        series: dict[int, _RouteSeries] = {}
        for context in iter_route_contexts(routes):
            template = str(context.path)
            route = context.original_route
            if isinstance(route, Mount):
                series[id(route.app)] = _RouteSeries(self._metrics, template + "/{path}")
                continue
            one = _RouteSeries(self._metrics, template)
            series[id(route)] = one
            if context.endpoint is not None:
                series.setdefault(id(context.endpoint), one)
        return series


class _WorkerServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # `vidrelay worker` handles SIGINT and SIGTERM itself


class MetricsServerFailed(RuntimeError):
    """The worker's metrics port could not be opened."""


@contextlib.asynccontextmanager
async def worker_metrics_server(
    metrics: ProcessMetrics, host: str, port: int, token: str | None
) -> AsyncIterator[None]:
    """Serve `/metrics` on `host:port` while the block runs (the worker serves nothing else)."""

    async def not_found(request: Request, _error: Exception) -> Response:
        return error_response(404, "Unknown request URL. Check the path and method.")

    app = Starlette(routes=[metrics_route(metrics, token)], exception_handlers={404: not_found})
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
    )
    try:  # bound here, so that a port in use stops the start with one line
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listening = socket.create_server((host, port), family=family)
    except OSError as error:
        raise MetricsServerFailed(
            f"VIDRELAY_METRICS_PORT: cannot listen on {host}:{port} ({error.strerror})"
        ) from None
    server = _WorkerServer(config)
    task = asyncio.create_task(server.serve([listening]), name="vidrelay-metrics-server")
    try:
        yield
    finally:
        server.should_exit = True
        await task
