"""A fake Alibaba Cloud Model Studio (DashScope) that speaks the Wan video API over real HTTP.

The wire protocol as documented: `POST /api/v1/services/aigc/video-generation/video-synthesis`
(`Authorization: Bearer`, `X-DashScope-Async: enable`, `{"model", "input", "parameters"}`)
answers `{"output": {"task_id", "task_status": "PENDING"}, "request_id"}`; `GET
/api/v1/tasks/{task_id}` answers the task (`PENDING`, `RUNNING`, `SUCCEEDED` with
`output.video_url`, `FAILED` with `output.code`/`output.message`, `CANCELED`, or `UNKNOWN` for
an id it does not know); errors are `{"code", "message", "request_id"}`. The video is served by a
"CDN" on another port (another origin), behind a URL signed with an `Expires` time, as OSS
does; each look at a finished task signs a fresh one.

In tests::

    fake = FakeDashScope(keys={"sk-ds-test-0001"})
    with fake.serve():                      # the API on fake.url, the CDN on fake.cdn_url
        fake.submit_429s = 2                # fault modes are plain attributes (see `reset`)
        ...                                 # fake.requests records every request

As a process, for the benchmark::

    python -m tests.fakes.dashscope_upstream --port P --min-s 10 --max-s 60 [--keys k1,k2]

Each task finishes after a random duration in [min, max] seconds; `GET /_stats` reports when
each task completed and how many requests named it. A task's state is computed from its
timestamps (no task or sleep per job), so thousands of jobs in flight cost nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.http_server import ThreadedServer
from tests.fakes.media import tiny_mp4

SUBMIT_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"
TASKS_PATH = "/api/v1/tasks"
DEFAULT_FAILURE = {
    "code": "InternalError.Algo",
    "message": "Inference failed: the video could not be generated.",
}
WEIRD_STATUS = "PREPARING"
"""A status word DashScope does not document (yet)."""
_QUEUED_SHARE = 0.1  # the first tenth of a task's duration it is PENDING, then RUNNING
_LEGACY_T2V_SIZES = frozenset(
    {"832*480", "480*832", "624*624", "1280*720", "720*1280", "960*960", "1088*832",
     "832*1088", "1920*1080", "1080*1920", "1440*1440", "1632*1248", "1248*1632"}
)  # fmt: skip
_RATIOS = frozenset({"16:9", "9:16", "1:1", "4:3", "3:4"})


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
    body: dict[str, Any] | None = None
    """A submit's JSON body."""


@dataclass(slots=True)
class FakeTask:
    id: str
    body: dict[str, Any]
    created_at: float
    duration_s: float
    ending: str
    """SUCCEEDED, FAILED or CANCELED."""
    requests: int = 1  # the submit
    forgotten: bool = False
    """Lookups answer UNKNOWN, as for an expired task id."""

    @property
    def completes_at(self) -> float:
        return self.created_at + self.duration_s


class FakeDashScope:
    """The fake's state and fault modes; `app` is the Starlette app serving API and CDN.

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
                Route(SUBMIT_PATH, self._submit, methods=["POST"]),
                Route(TASKS_PATH + "/{task_id}", self._task, methods=["GET"]),
                Route("/cdn/{task_id}.mp4", self._cdn, methods=["GET"]),
                Route("/_stats", self._stats, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        """Forget tasks and requests; every fault mode back to "a well-behaved DashScope"."""
        self.tasks: dict[str, FakeTask] = {}
        self.requests: list[RecordedRequest] = []
        self.total_requests = 0
        self.job_duration_s = 0.0
        """How long each task runs (unless `random_duration_s` was given)."""
        self.submit_429s = 0
        """Submits refused 429 `Throttling.RateQuota`."""
        self.retry_after: str | None = None
        """`Retry-After` sent with every 429 (DashScope documents none)."""
        self.submit_500s = 0
        """Submits answered 500 `InternalError`."""
        self.moderate_submits = False
        """Submits refused 400 `DataInspectionFailed`, the message naming the host, a task id
        and the key (as a careless upstream might)."""
        self.arrearage = False
        """Every API call refused 400 `Arrearage` (the account's balance is exhausted)."""
        self.invalid_parameter: str | None = None
        """Submits refused 400 `InvalidParameter` with this message."""
        self.submit_raw_body: str | None = None
        """Submits answer 200 with this body as is (no task is made)."""
        self.fail_tasks = False
        """Tasks end FAILED with `failure` (`output.code`, `output.message`)."""
        self.failure: dict[str, str] = dict(DEFAULT_FAILURE)
        self.cancel_tasks = False
        """Tasks end CANCELED."""
        self.weird_status_s = 0.0
        """For this long after creation a task's status is `WEIRD_STATUS`."""
        self.forget_tasks = 0
        """The next this many tasks made are forgotten at once: their lookups answer UNKNOWN,
        as for an expired or never-made task id (`FakeTask.forgotten` forgets one later)."""
        self.poll_429s = 0
        self.poll_500s = 0
        self.content_404s = 0
        """The CDN answers 404 (`NoSuchKey`) this many times before serving the video."""
        self.url_lifetime_s = 86400.0
        """How long a signed video URL is good for; past it the CDN answers 403 (expired)."""
        self.expire_urls = 0
        """The next this many video URLs handed out are already past their `Expires`."""
        self.outage = False
        """Every API route answers 503, as an upstream that is down."""

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def cdn_port(self) -> int:
        return int(self.cdn_url.rsplit(":", 1)[1])

    @contextlib.contextmanager
    def serve(self) -> Iterator[FakeDashScope]:
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
        return self.requests_to(SUBMIT_PATH, "POST")

    def status_of(self, task: FakeTask, now: float) -> str:
        elapsed = now - task.created_at
        if elapsed < self.weird_status_s:
            return WEIRD_STATUS
        if elapsed >= task.duration_s:
            return task.ending
        return "PENDING" if elapsed < task.duration_s * _QUEUED_SHARE else "RUNNING"

    # -- endpoints ------------------------------------------------------------------------

    async def _submit(self, request: Request) -> Response:
        body = await _json_body(request)
        self._record(request, body)
        key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        if request.headers.get("x-dashscope-async") != "enable":
            return _error(
                403, "AccessDenied", "current user api does not support synchronous calls"
            )
        if self.submit_500s > 0:
            self.submit_500s -= 1
            return _error(500, "InternalError", "An internal error has occured, please try again.")
        if self.submit_429s > 0:
            self.submit_429s -= 1
            headers = {"retry-after": self.retry_after} if self.retry_after else None
            return _error(
                429, "Throttling.RateQuota", "Requests rate limit exceeded.", headers=headers
            )
        if self.submit_raw_body is not None:
            return Response(self.submit_raw_body, media_type="application/json")
        task_id = str(uuid.uuid4())
        if self.moderate_submits:
            host = request.headers.get("host", "")
            return _error(
                400,
                "DataInspectionFailed",
                f"Input data may contain inappropriate content. Task {task_id} on {host} "
                f"(key {key}); see http://{host}/help/content-security",
            )
        problem = self.invalid_parameter or _invalid(body)
        if problem is not None:
            return _error(400, "InvalidParameter", problem)
        assert body is not None
        low, high = self.random_duration_s or (self.job_duration_s, self.job_duration_s)
        ending = "FAILED" if self.fail_tasks else "CANCELED" if self.cancel_tasks else "SUCCEEDED"
        task = FakeTask(task_id, body, time.time(), random.uniform(low, high), ending)
        if self.forget_tasks > 0:
            self.forget_tasks -= 1
            task.forgotten = True
        self.tasks[task_id] = task
        return JSONResponse(
            {"output": {"task_id": task_id, "task_status": "PENDING"}, "request_id": _request_id()}
        )

    async def _task(self, request: Request) -> Response:
        self._record(request)
        _key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        task_id = request.path_params["task_id"]
        task = self.tasks.get(task_id)
        if task is not None:
            task.requests += 1
        if self.poll_500s > 0:
            self.poll_500s -= 1
            return _error(500, "InternalError", "An internal error has occured, please try again.")
        if self.poll_429s > 0:
            self.poll_429s -= 1
            headers = {"retry-after": self.retry_after} if self.retry_after else None
            return _error(429, "Throttling", "Requests throttling triggered.", headers=headers)
        if task is None or task.forgotten:
            output: dict[str, Any] = {"task_id": task_id, "task_status": "UNKNOWN"}
            return JSONResponse({"request_id": _request_id(), "output": output})
        return JSONResponse(self._task_body(task, time.time()))

    async def _cdn(self, request: Request) -> Response:
        self._record(request)
        task = self.tasks.get(request.path_params["task_id"])
        if task is not None:
            task.requests += 1
        if task is None or task.ending != "SUCCEEDED":
            return _oss_error(404, "NoSuchKey", "The specified key does not exist.")
        if self.content_404s > 0:
            self.content_404s -= 1
            return _oss_error(404, "NoSuchKey", "The specified key does not exist.")
        try:
            expires = float(request.query_params.get("Expires", "0"))
        except ValueError:
            expires = 0.0
        if expires < time.time():
            return _oss_error(403, "AccessDenied", "Request has expired.")
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

    def _task_body(self, task: FakeTask, now: float) -> dict[str, Any]:
        status = self.status_of(task, now)
        output: dict[str, Any] = {
            "task_id": task.id,
            "task_status": status,
            "submit_time": _clock(task.created_at),
            "orig_prompt": task.body.get("input", {}).get("prompt", ""),
        }
        if status in ("RUNNING", "SUCCEEDED", "FAILED", "CANCELED"):
            output["scheduled_time"] = _clock(task.created_at + task.duration_s * _QUEUED_SHARE)
        answer: dict[str, Any] = {"request_id": _request_id(), "output": output}
        if status == "SUCCEEDED":
            output["end_time"] = _clock(task.completes_at)
            output["video_url"] = self._signed_url(task, now)
            duration = task.body.get("parameters", {}).get("duration", 5)
            answer["usage"] = {"duration": duration, "video_count": 1}
        elif status == "FAILED":
            output["end_time"] = _clock(task.completes_at)
            output.update(self.failure)
        return answer

    def _signed_url(self, task: FakeTask, now: float) -> str:
        expires = now + self.url_lifetime_s
        if self.expire_urls > 0:
            self.expire_urls -= 1
            expires = now - 1.0
        query = urlencode(
            {
                "Expires": f"{expires:.3f}",
                "OSSAccessKeyId": "LTAI5tFakeAccessKey",
                "Signature": uuid.uuid4().hex,
            }
        )
        return f"{self.cdn_url or self.url}/cdn/{task.id}.mp4?{query}"

    def _authorise(self, request: Request) -> tuple[str | None, Response | None]:
        key = _bearer(request)
        if self.outage:
            return key, _error(503, "ServiceUnavailable", "The service is temporarily unavailable.")
        if key is None or (self.keys is not None and key not in self.keys):
            return key, _error(401, "InvalidApiKey", "Invalid API-key provided.")
        if self.arrearage:
            return key, _error(
                400,
                "Arrearage",
                "Access denied, please make sure your account is in good standing.",
            )
        return key, None

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
                body=body,
            )
        )


def _invalid(body: dict[str, Any] | None) -> str | None:
    """What the documented request rules refuse in a submit body, or None."""
    if body is None:
        return "The request body is not valid JSON."
    model, inputs, parameters = body.get("model"), body.get("input"), body.get("parameters", {})
    if not isinstance(model, str) or not model:
        return "Field required: model"
    if not isinstance(inputs, dict) or not isinstance(parameters, dict):
        return "Field required: input"
    duration = parameters.get("duration")
    if duration is not None and (isinstance(duration, bool) or not isinstance(duration, int)):
        return "parameters.duration must be an integer."
    image_model = "i2v" in model.split("-")
    legacy = model.startswith(("wan2.1", "wanx2.1", "wan2.2", "wan2.5", "wan2.6"))
    if legacy and image_model:
        if not isinstance(inputs.get("img_url"), str):
            return "Field required: input.img_url"
        if parameters.get("resolution") not in ("480P", "720P", "1080P"):
            return "parameters.resolution must be 480P, 720P or 1080P."
    elif legacy:
        if "size" in parameters and parameters["size"] not in _LEGACY_T2V_SIZES:
            return f"The size {parameters['size']} is not supported."
        if "img_url" in inputs:
            return "A text-to-video model takes no input.img_url."
    else:
        if parameters.get("resolution", "1080P") not in ("720P", "1080P"):
            return "parameters.resolution must be 720P or 1080P."
        media = inputs.get("media")
        if image_model and not (isinstance(media, list) and media):
            return "image-to-video model must provide an image in input.media."
        if not image_model and parameters.get("ratio", "16:9") not in _RATIOS:
            return "parameters.ratio must be one of 16:9, 9:16, 1:1, 4:3, 3:4."
    return None


async def _json_body(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body())
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


def _request_id() -> str:
    return str(uuid.uuid4())


def _clock(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(moment)) + ".000"


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"code": code, "message": message, "request_id": _request_id()}
    return JSONResponse(body, status_code=status, headers=headers)


def _oss_error(status: int, code: str, message: str) -> Response:
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    )
    return Response(xml, status, media_type="application/xml")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake DashScope (Wan video) for benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--min-s", type=float, default=10.0, help="shortest task duration")
    parser.add_argument("--max-s", type=float, default=60.0, help="longest task duration")
    parser.add_argument("--keys", default="", help="accepted keys, comma-separated (any if empty)")
    arguments = parser.parse_args(argv)
    keys = {key for key in arguments.keys.split(",") if key} or None
    fake = FakeDashScope(
        keys, random_duration_s=(arguments.min_s, arguments.max_s), record_requests=False
    )
    fake.url = f"http://{arguments.host}:{arguments.port}"  # the video is served from here
    uvicorn.run(
        fake.app, host=arguments.host, port=arguments.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
