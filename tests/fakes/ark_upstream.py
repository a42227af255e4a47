"""A fake Volcengine Ark / BytePlus ModelArk (Seedance video generation) over real HTTP.

It speaks the wire protocol as the docs describe it (ModelArk 1520757, 1521309, 1299023):
`POST /api/v3/contents/generations/tasks` with `Authorization: Bearer <key>` and a JSON body
(`model`, `content` items, settings as body fields, each checked as the docs allow) answers
`{"id": "cgt-…"}`; `GET …/tasks/{id}` answers the task (`queued`, `running`, `succeeded`,
`failed`, …) with the video at `content.video_url`, a signed link on a "CDN" on another port
(another origin) that expires; `GET …/tasks?page_num&page_size` lists tasks; errors are
`{"error": {"code", "message", "param", "type"}}` with Ark's codes.

In tests::

    fake = FakeArkUpstream(keys={"ark-key-1"})
    with fake.serve():                      # the API on fake.url, the CDN on fake.cdn_url
        fake.submit_429s = 2                # fault modes are plain attributes (see `reset`)
        ...                                 # fake.requests records every request

As a process, for the benchmark::

    python -m tests.fakes.ark_upstream --port P --min-s 10 --max-s 60 [--keys k1,k2]

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
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.http_server import ThreadedServer
from tests.fakes.media import tiny_mp4

TASKS = "/api/v3/contents/generations/tasks"
RATIOS = frozenset({"16:9", "4:3", "1:1", "3:4", "9:16", "21:9", "adaptive"})
RESOLUTIONS = frozenset({"480p", "720p", "1080p"})
IMAGE_ROLES = frozenset({"first_frame", "last_frame", "reference_image"})
BOOL_FIELDS = ("camera_fixed", "watermark", "generate_audio", "return_last_frame", "draft")
DEFAULT_FAILURE: dict[str, str] = {
    "code": "OutputVideoSensitiveContentDetected",
    "message": "The request failed because the output video may contain sensitive information.",
}
_QUEUED_SHARE = 0.1  # the first tenth of a job's duration it is queued, then running
_URL_TTL_S = 3600


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
    body: Any = None
    """The JSON body, parsed."""


@dataclass(slots=True)
class FakeTask:
    id: str
    model: str
    body: dict[str, Any]
    created_at: float
    duration_s: float
    fails: bool
    requests: int = 1  # the submit

    @property
    def completes_at(self) -> float:
        return self.created_at + self.duration_s


class FakeArkUpstream:
    """The fake's state and fault modes; `app` is the Starlette app serving it.

    `keys=None` accepts any bearer key. Fault-mode attributes are documented in `reset`; the
    counters (`submit_500s`, ...) count down as the faults are served.
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
                Route(TASKS, self._create, methods=["POST"]),
                Route(TASKS, self._list, methods=["GET"]),
                Route(TASKS + "/{task_id}", self._retrieve, methods=["GET"]),
                Route("/tos/{task_id}.mp4", self._cdn, methods=["GET"]),
                Route("/_stats", self._stats, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        """Forget tasks and requests; every fault mode back to "a well-behaved Ark"."""
        self.tasks: dict[str, FakeTask] = {}
        self.requests: list[RecordedRequest] = []
        self.total_requests = 0
        self.job_duration_s = 0.0
        """How long each task runs (unless `random_duration_s` was given)."""
        self.weird_status_s = 0.0
        """For this long after creation a task's status is `weird_state`, a word Ark lacks."""
        self.fail_jobs = False
        """Tasks end `end_status` with `failure_error` instead of succeeding."""
        self.end_status = "failed"
        """How a failing task ends: `failed`, `cancelled` or `expired`."""
        self.failure_error: dict[str, str] | None = dict(DEFAULT_FAILURE)
        """The failed task's `error` (None: the task names no reason)."""
        self.submit_500s = 0
        """Submits answer 500 `InternalServiceError`."""
        self.submit_429s = 0
        self.poll_429s = 0
        self.rate_limit_code = "RateLimitExceeded.EndpointRPMExceeded"
        self.retry_after: str | None = None
        """`Retry-After` sent with every 429 (Ark's docs promise none)."""
        self.moderate_submits = False
        """Submits are refused 400 `InputTextSensitiveContentDetected`, with a message naming
        the host, a task id and the key."""
        self.reject_parameter: str | None = None
        """Submits are refused 400 `InvalidParameter` naming this parameter."""
        self.overdue_keys: set[str] = set()
        """These keys get 403 `AccountOverdueError` (an exhausted balance) on every call."""
        self.lose_tasks = 0
        """The next polls of that many known tasks answer 404: the task is not found."""
        self.cdn_404s = 0
        """The CDN answers 404 for the next that many downloads (the video not there yet)."""
        self.expired_urls = 0
        """The next that many video URLs a status names have already expired (the CDN
        answers 403 with an XML page to them)."""
        self.outage = False
        """Every API route answers 503, as an upstream that is down."""
        self.offer_task_list = True
        """False: listing tasks is 404, as on a gateway that serves only create and get."""
        self.submit_raw_body: str | None = None
        """Submits answer 200 with this body as is (no task is made)."""

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def cdn_port(self) -> int:
        return int(self.cdn_url.rsplit(":", 1)[1])

    @contextlib.contextmanager
    def serve(self) -> Iterator[FakeArkUpstream]:
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
        return self.requests_to(TASKS, "POST")

    def status_of(self, task: FakeTask, now: float) -> str:
        elapsed = now - task.created_at
        if elapsed < self.weird_status_s:
            return "weird_state"
        if elapsed >= task.duration_s:
            return self.end_status if task.fails else "succeeded"
        return "queued" if elapsed < task.duration_s * _QUEUED_SHARE else "running"

    # -- endpoints ------------------------------------------------------------------------

    async def _create(self, request: Request) -> Response:
        recorded = await self._record(request, with_body=True)
        key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        if self.submit_500s > 0:
            self.submit_500s -= 1
            return _error(500, "InternalServiceError", "The service encountered an error.")
        if self.submit_429s > 0:
            self.submit_429s -= 1
            return self._rate_limited()
        if self.submit_raw_body is not None:
            return Response(self.submit_raw_body, media_type="application/json")
        body = recorded.body if recorded else await _json_body(request)
        task_id = _task_id()
        if self.moderate_submits:
            host = request.headers.get("host", "")
            return _error(
                400,
                "InputTextSensitiveContentDetected",
                f"The request failed because the input text may contain sensitive information "
                f"(task {task_id} on {host}, key {key}). See http://{host}/docs/moderation",
            )
        problem = self.reject_parameter or _invalid_parameter(body)
        if problem is not None:
            return _error(
                400,
                "InvalidParameter",
                f"The parameter `{problem}` specified in the request is not valid.",
                param=problem,
            )
        low, high = self.random_duration_s or (self.job_duration_s, self.job_duration_s)
        task = FakeTask(
            id=task_id,
            model=body["model"],
            body=body,
            created_at=time.time(),
            duration_s=random.uniform(low, high),
            fails=self.fail_jobs,
        )
        self.tasks[task.id] = task
        return JSONResponse({"id": task.id})

    async def _list(self, request: Request) -> Response:
        await self._record(request)
        _key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        if not self.offer_task_list:
            return Response("404 page not found", 404, media_type="text/plain")
        size = int(request.query_params.get("page_size", "10"))
        now = time.time()
        newest = list(self.tasks.values())[::-1][:size]
        items = [self._task_object(task, now) for task in newest]
        return JSONResponse({"items": items, "total": len(self.tasks)})

    async def _retrieve(self, request: Request) -> Response:
        await self._record(request)
        _key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        task = self._task(request)
        if task is not None and self.lose_tasks > 0:
            self.lose_tasks -= 1
            del self.tasks[task.id]
            task = None
        if task is None:
            task_id = request.path_params["task_id"]
            return _error(404, "ResourceNotFound", f"The specified task {task_id} is not found.")
        if self.poll_429s > 0:
            self.poll_429s -= 1
            return self._rate_limited()
        return JSONResponse(self._task_object(task, time.time()))

    async def _cdn(self, request: Request) -> Response:
        await self._record(request)
        task = self._task(request)
        now = time.time()
        if task is None or now < task.completes_at or task.fails or self.cdn_404s > 0:
            self.cdn_404s = max(0, self.cdn_404s - 1)
            return _xml_error(404, "NoSuchKey", "The specified key does not exist.")
        expires = request.query_params.get("X-Tos-Expires", "0")
        if not expires.isdigit() or int(expires) < now:
            return _xml_error(403, "AccessDenied", "Request has expired")
        return Response(tiny_mp4(), media_type="video/mp4")

    async def _stats(self, request: Request) -> Response:
        now = time.time()
        jobs = {
            task.id: {
                "completed_at": task.completes_at if task.completes_at <= now else None,
                "requests": task.requests,
            }
            for task in self.tasks.values()
        }
        return JSONResponse({"jobs": jobs, "total_requests": self.total_requests})

    # -- helpers --------------------------------------------------------------------------

    def _task_object(self, task: FakeTask, now: float) -> dict[str, Any]:
        status = self.status_of(task, now)
        body = task.body
        answer: dict[str, Any] = {
            "id": task.id,
            "model": task.model,
            "status": status,
            "created_at": int(task.created_at),
            "updated_at": int(min(now, task.completes_at)),
            "seed": body.get("seed", 20250331),
            "resolution": body.get("resolution", "720p"),
            "ratio": body.get("ratio", "16:9"),
            "duration": body.get("duration", 5),
            "framespersecond": 24,
        }
        if status == "succeeded":
            answer["content"] = {"video_url": self._signed_url(task, now)}
            answer["usage"] = {"completion_tokens": 108900, "total_tokens": 108900}
        elif status in ("failed", "cancelled", "expired") and self.failure_error is not None:
            answer["error"] = dict(self.failure_error)
        return answer

    def _signed_url(self, task: FakeTask, now: float) -> str:
        expires = int(now) + _URL_TTL_S
        if self.expired_urls > 0:
            self.expired_urls -= 1
            expires = int(now) - 60
        signature = secrets.token_hex(16)
        return (
            f"{self.cdn_url}/tos/{task.id}.mp4?X-Tos-Algorithm=TOS4-HMAC-SHA256"
            f"&X-Tos-Expires={expires}&X-Tos-Signature={signature}"
        )

    def _task(self, request: Request) -> FakeTask | None:
        task = self.tasks.get(request.path_params["task_id"])
        if task is not None:
            task.requests += 1
        return task

    def _rate_limited(self) -> Response:
        headers = {"retry-after": self.retry_after} if self.retry_after is not None else None
        return _error(
            429,
            self.rate_limit_code,
            "The Requests Per Minute (RPM) limit of the associated endpoint for your account "
            "has been exceeded.",
            headers=headers,
        )

    def _authorise(self, request: Request) -> tuple[str | None, Response | None]:
        key = _bearer(request)
        if self.outage:
            return key, _error(503, "ServiceUnavailable", "The service is unavailable.")
        if key is None or (self.keys is not None and key not in self.keys):
            return key, _error(
                401,
                "AuthenticationError",
                "The API key or AK/SK in the request is missing or invalid.",
            )
        if key in self.overdue_keys:
            return key, _error(
                403,
                "AccountOverdueError",
                "The request failed because your account has an overdue balance.",
            )
        return key, None

    async def _record(self, request: Request, with_body: bool = False) -> RecordedRequest | None:
        self.total_requests += 1
        if not self.record_requests:
            return None
        recorded = RecordedRequest(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers={name.lower(): value for name, value in request.headers.items()},
            key=_bearer(request),
            port=int(request.scope["server"][1]),
            body=await _json_body(request) if with_body else None,
        )
        self.requests.append(recorded)
        return recorded


def _invalid_parameter(body: Any) -> str | None:
    """The first field of a create body the docs do not allow, or None."""
    if not isinstance(body, dict):
        return "body"
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model"
    content = body.get("content")
    if not isinstance(content, list) or not content:
        return "content"
    for item in content:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "text" and isinstance(item.get("text"), str):
            continue
        if kind != "image_url":
            return "content.type"
        image = item.get("image_url")
        url = image.get("url") if isinstance(image, dict) else None
        if not isinstance(url, str) or not url.startswith(("data:image/", "https://", "http://")):
            return "content.image_url.url"
        if item.get("role", "first_frame") not in IMAGE_ROLES:
            return "content.role"
    if body.get("ratio", "16:9") not in RATIOS:
        return "ratio"
    if body.get("resolution", "720p") not in RESOLUTIONS:
        return "resolution"
    duration = body.get("duration", 5)
    if isinstance(duration, bool) or not isinstance(duration, int) or not 2 <= duration <= 15:
        return "duration"
    if "frames" in body and "duration" in body:
        return "frames"
    seed = body.get("seed", -1)
    if isinstance(seed, bool) or not isinstance(seed, int) or not -1 <= seed <= 2**32 - 1:
        return "seed"
    for name in BOOL_FIELDS:
        if not isinstance(body.get(name, False), bool):
            return name
    return None


def _task_id() -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    suffix = "".join(secrets.choice(alphabet) for _ in range(5))
    return f"cgt-{time.strftime('%Y%m%d%H%M%S')}-{suffix}"


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


def _error(
    status: int,
    code: str,
    message: str,
    *,
    param: str = "",
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    kinds = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}
    kind = kinds.get(status, "TooManyRequests" if status == 429 else "InternalServerError")
    body = {
        "error": {
            "code": code,
            "message": f"{message} Request id: {secrets.token_hex(16)}",
            "param": param,
            "type": kind,
        }
    }
    return JSONResponse(body, status_code=status, headers=headers)


def _xml_error(status: int, code: str, message: str) -> Response:
    page = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
        f"<Message>{message}</Message><RequestId>{secrets.token_hex(12)}</RequestId></Error>"
    )
    return Response(page, status, media_type="application/xml")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake Volcengine Ark upstream for benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--min-s", type=float, default=10.0, help="shortest job duration")
    parser.add_argument("--max-s", type=float, default=60.0, help="longest job duration")
    parser.add_argument("--keys", default="", help="accepted keys, comma-separated (any if empty)")
    arguments = parser.parse_args(argv)
    keys = {key for key in arguments.keys.split(",") if key} or None
    fake = FakeArkUpstream(
        keys, random_duration_s=(arguments.min_s, arguments.max_s), record_requests=False
    )
    # Run as a process, the fake serves its CDN on the same port (a URL needs a host).
    fake.url = fake.cdn_url = f"http://{arguments.host}:{arguments.port}"
    uvicorn.run(
        fake.app, host=arguments.host, port=arguments.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
