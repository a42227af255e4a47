"""A fake MiniMax video API (Hailuo) over real HTTP, speaking the wire protocol as documented
(https://platform.minimax.io/docs/api-reference/video-generation-intro).

`POST /v1/video_generation` takes a JSON body and names a `task_id`;
`GET /v1/query/video_generation?task_id=…` says `Preparing`, `Queueing`, `Processing`, then
`Success` with a `file_id` (never a URL) or `Fail`; `GET /v1/files/retrieve?file_id=…` names a
`download_url` on the "CDN", another port (another origin), whose links expire. Every refusal
is HTTP 200 with `base_resp.status_code` != 0, as MiniMax answers.

In tests::

    fake = FakeMiniMaxUpstream(keys={"sk-mm-test-0001"})
    with fake.serve():                      # the API on fake.url, the CDN on fake.cdn_url
        fake.submit_rate_limits = 2         # fault modes are plain attributes
        ...                                 # fake.requests records every request

As a process, for the benchmark::

    python -m tests.fakes.minimax_upstream --port P --min-s 10 --max-s 60 [--keys k1,k2]

Each job finishes after a random duration in [min, max] seconds; `GET /_stats` reports when
each job completed upstream and how many requests named it. A job's state is computed from
its timestamps (no task or sleep per job), so thousands of jobs in flight cost nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.http_server import ThreadedServer
from tests.fakes.media import tiny_mp4

RESOLUTIONS = {"512P": (912, 512), "720P": (1280, 720), "768P": (1366, 768), "1080P": (1920, 1080)}
DURATIONS = (6, 10)
SERIES_01 = frozenset(
    {"T2V-01", "T2V-01-Director", "I2V-01", "I2V-01-Director", "I2V-01-live", "S2V-01"}
)
LOGIN_FAIL = (
    "login fail: Please carry the API secret key in the 'Authorization' field of the request header"
)
_PREPARING_SHARE, _QUEUEING_SHARE = 0.05, 0.2  # of a job's duration, then Processing
_LINK_LIFETIME_S = 9 * 3600  # MiniMax's download links last 9 hours


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Lower-case names."""
    key: str | None
    """The bearer key sent, if any."""
    port: int
    """The port it arrived on: `fake.port` for the API, `fake.cdn_port` for the CDN."""
    json: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class FakeJob:
    task_id: str
    file_id: str
    body: dict[str, Any]
    created_at: float
    duration_s: float
    fails: bool
    requests: int = 1  # the submit

    @property
    def completes_at(self) -> float:
        return self.created_at + self.duration_s


class FakeMiniMaxUpstream:
    """The fake's state and fault modes; `app` is the Starlette app serving API and CDN.

    `keys=None` accepts any bearer key. Fault-mode attributes are documented in `reset`; the
    counters (`submit_rate_limits`, ...) count down as the faults are served.
    """

    def __init__(
        self,
        keys: set[str] | None = None,
        *,
        random_duration_s: tuple[float, float] | None = None,
        record_requests: bool = True,
    ) -> None:
        self.keys = keys
        self.random_duration_s = random_duration_s
        self.record_requests = record_requests
        self.url = ""
        self.cdn_url = ""
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/v1/video_generation", self._create, methods=["POST"]),
                Route("/v1/query/video_generation", self._query, methods=["GET"]),
                Route("/v1/files/retrieve", self._retrieve, methods=["GET"]),
                Route("/cdn/{file_id}.mp4", self._cdn, methods=["GET"]),
                Route("/_stats", self._stats, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        """Forget jobs and requests; every fault mode back to "a well-behaved MiniMax"."""
        self.jobs: dict[str, FakeJob] = {}
        self.files: dict[str, FakeJob] = {}
        self.requests: list[RecordedRequest] = []
        self.total_requests = 0
        self.job_duration_s = 0.0
        """How long each job runs (unless `random_duration_s` was given)."""
        self.submit_rate_limits = 0
        """Submits answer 1002 "rate limit"."""
        self.query_rate_limits = 0
        """Status queries answer 1002 "rate limit"."""
        self.retry_after: str | None = None
        """Sent as `Retry-After` with a rate limit (MiniMax documents none)."""
        self.submit_unknown_errors = 0
        """Submits answer 1000 "unknown error" (the upstream's own trouble)."""
        self.exhausted_balance = False
        """Submits answer 1008 "insufficient balance"."""
        self.moderate_submits = False
        """Submits answer 1026 "input new_sensitive", the text naming the host, a task id and
        the key (what a client must never see)."""
        self.fail_jobs = False
        """Jobs end `Fail` with `failure_code` / `failure_message` in `base_resp`."""
        self.failure_code = 1027
        self.failure_message = "output new_sensitive"
        """0 and "": a bare `Fail` (base_resp success), with `error_message` if set."""
        self.failure_error_message: str | None = None
        self.weird_status_s = 0.0
        """For this long after creation a job's status is `weird_status`."""
        self.weird_status = "Rendering"
        self.lost_queries = 0
        """Status queries answer 2013 "invalid params" as for a task id it does not know."""
        self.content_404s = 0
        """CDN downloads answer 404, as for a file not copied there yet."""
        self.expired_links = 0
        """File retrieves name a link already past its expiry (the CDN answers 403)."""
        self.outage = False
        """Every API route answers HTTP 503 with an HTML page, as a gateway in trouble."""

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def cdn_port(self) -> int:
        return int(self.cdn_url.rsplit(":", 1)[1])

    @contextlib.contextmanager
    def serve(self) -> Iterator[FakeMiniMaxUpstream]:
        """Run the API and, on another port (another origin), the CDN, in threads."""
        with ThreadedServer(self.app) as api, ThreadedServer(self.app) as cdn:
            self.url, self.cdn_url = api.url, cdn.url
            yield self

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        return [
            recorded
            for recorded in self.requests
            if recorded.path == path and (method is None or recorded.method == method)
        ]

    def submits(self) -> list[RecordedRequest]:
        return self.requests_to("/v1/video_generation", "POST")

    def status_of(self, job: FakeJob, now: float) -> str:
        elapsed = now - job.created_at
        if elapsed < self.weird_status_s:
            return self.weird_status
        if elapsed >= job.duration_s:
            return "Fail" if job.fails else "Success"
        if elapsed < job.duration_s * _PREPARING_SHARE:
            return "Preparing"
        return "Queueing" if elapsed < job.duration_s * _QUEUEING_SHARE else "Processing"

    # -- endpoints ------------------------------------------------------------------------

    async def _create(self, request: Request) -> Response:
        body = await _json_body(request)
        self._record(request, body)
        key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        if self.submit_rate_limits > 0:
            self.submit_rate_limits -= 1
            return self._rate_limit()
        if self.submit_unknown_errors > 0:
            self.submit_unknown_errors -= 1
            return _refusal(1000, "unknown error")
        if self.exhausted_balance:
            return _refusal(1008, "insufficient balance")
        task_id = _digits()
        if self.moderate_submits:
            host = request.headers.get("host", "")
            return _refusal(
                1026,
                f"input new_sensitive: task {task_id} on {host} with key {key} was blocked, see "
                f"http://{host}/docs/moderation",
            )
        problem = _invalid(body)
        if problem:
            return _refusal(2013, f"invalid params, {problem}")
        low, high = self.random_duration_s or (self.job_duration_s, self.job_duration_s)
        job = FakeJob(
            task_id=task_id,
            file_id=_digits(),
            body=body,
            created_at=time.time(),
            duration_s=random.uniform(low, high),
            fails=self.fail_jobs,
        )
        self.jobs[job.task_id] = job
        self.files[job.file_id] = job
        return JSONResponse({"task_id": task_id, "base_resp": _success()})

    async def _query(self, request: Request) -> Response:
        self._record(request)
        _key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        job = self.jobs.get(request.query_params.get("task_id", ""))
        if job is not None:
            job.requests += 1
        if self.query_rate_limits > 0:
            self.query_rate_limits -= 1
            return self._rate_limit()
        if self.lost_queries > 0:
            self.lost_queries -= 1
            job = None
        if job is None:
            return _refusal(2013, "invalid params, task not found")
        status = self.status_of(job, time.time())
        answer: dict[str, Any] = {"task_id": job.task_id, "status": status, "base_resp": _success()}
        if status == "Success":
            width, height = RESOLUTIONS.get(str(job.body.get("resolution")), (1366, 768))
            answer.update(file_id=job.file_id, video_width=width, video_height=height)
        elif status == "Fail":
            if self.failure_code:
                answer["base_resp"] = {
                    "status_code": self.failure_code,
                    "status_msg": self.failure_message,
                }
            if self.failure_error_message is not None:
                answer["error_message"] = self.failure_error_message
        return JSONResponse(answer)

    async def _retrieve(self, request: Request) -> Response:
        self._record(request)
        _key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        job = self.files.get(request.query_params.get("file_id", ""))
        if job is None or job.fails or time.time() < job.completes_at:
            return _refusal(2013, "invalid params, file not found")
        job.requests += 1
        expires = int(time.time()) + _LINK_LIFETIME_S
        if self.expired_links > 0:
            self.expired_links -= 1
            expires = int(time.time()) - 60
        cdn = self.cdn_url or str(request.base_url).rstrip("/")
        file = {
            "file_id": int(job.file_id),  # a number here, a string in the query answer
            "bytes": len(tiny_mp4()),
            "created_at": int(job.completes_at),
            "filename": "output.mp4",
            "purpose": "video_generation",
            "download_url": f"{cdn}/cdn/{job.file_id}.mp4?Expires={expires}"
            f"&Signature={secrets.token_hex(8)}",
        }
        return JSONResponse({"file": file, "base_resp": _success()})

    async def _cdn(self, request: Request) -> Response:
        self._record(request)
        job = self.files.get(request.path_params["file_id"])
        if job is None:
            return Response("<html><body>404 Not Found</body></html>", 404, media_type="text/html")
        job.requests += 1
        if int(request.query_params.get("Expires", "0")) < time.time():
            return Response(
                "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                403,
                media_type="application/xml",
            )
        if self.content_404s > 0:
            self.content_404s -= 1
            return Response(
                "<Error><Code>NoSuchKey</Code></Error>", 404, media_type="application/xml"
            )
        return Response(tiny_mp4(), media_type="video/mp4")

    async def _stats(self, request: Request) -> Response:
        now = time.time()
        jobs = {
            job.task_id: {
                "completed_at": job.completes_at if job.completes_at <= now else None,
                "requests": job.requests,
            }
            for job in self.jobs.values()
        }
        return JSONResponse({"jobs": jobs, "total_requests": self.total_requests})

    # -- helpers --------------------------------------------------------------------------

    def _authorise(self, request: Request) -> tuple[str | None, Response | None]:
        key = _bearer(request)
        if self.outage:
            return key, Response(
                "<html><body>503 Service Temporarily Unavailable</body></html>",
                503,
                media_type="text/html",
            )
        if key is None or (self.keys is not None and key not in self.keys):
            return key, _refusal(1004, LOGIN_FAIL)
        return key, None

    def _rate_limit(self) -> Response:
        headers = {"retry-after": self.retry_after} if self.retry_after is not None else None
        return _refusal(1002, "rate limit", headers)

    def _record(self, request: Request, body: dict[str, Any] | None = None) -> None:
        self.total_requests += 1
        if not self.record_requests:
            return
        self.requests.append(
            RecordedRequest(
                method=request.method,
                path=request.url.path,
                query=dict(request.query_params),
                headers={name.lower(): value for name, value in request.headers.items()},
                key=_bearer(request),
                port=int(request.scope["server"][1]),
                json=body or {},
            )
        )


def _invalid(body: dict[str, Any]) -> str | None:
    """What MiniMax's validation would refuse in a submit body (2013), or None."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return "model is required"
    if not model.startswith("MiniMax-") and model not in SERIES_01:
        return f"model {model} is not supported"
    if not body.get("prompt") and not body.get("first_frame_image"):
        return "prompt or first_frame_image is required"
    duration = body.get("duration", 6)
    resolution = body.get("resolution", "768P")
    if duration not in DURATIONS:
        return f"duration {duration} is not supported"
    if resolution not in RESOLUTIONS:
        return f"resolution {resolution} is not supported"
    if resolution == "1080P" and duration != 6:
        return "1080P supports 6 seconds only"
    image = body.get("first_frame_image")
    if image is not None and not (
        isinstance(image, str) and image.startswith(("http://", "https://", "data:image/"))
    ):
        return "first_frame_image must be a URL or a data URL"
    return None


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _digits() -> str:
    return str(random.randrange(10**14, 10**15))


def _success() -> dict[str, Any]:
    return {"status_code": 0, "status_msg": "success"}


def _refusal(code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """MiniMax's refusal: HTTP 200, the code in `base_resp`."""
    return JSONResponse(
        {"base_resp": {"status_code": code, "status_msg": message}}, headers=headers
    )


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake MiniMax video API for benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--min-s", type=float, default=10.0, help="shortest job duration")
    parser.add_argument("--max-s", type=float, default=60.0, help="longest job duration")
    parser.add_argument("--keys", default="", help="accepted keys, comma-separated (any if empty)")
    arguments = parser.parse_args(argv)
    keys = {key for key in arguments.keys.split(",") if key} or None
    fake = FakeMiniMaxUpstream(
        keys, random_duration_s=(arguments.min_s, arguments.max_s), record_requests=False
    )
    uvicorn.run(
        fake.app, host=arguments.host, port=arguments.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
