"""A fake Kling AI API (`/v1/videos/text2video`, `image2video`, `video-extend`) over real HTTP.

It speaks the wire protocol as Kling documents it: `Authorization: Bearer <JWT>` signed HS256
with the secret key (`iss` = access key, `exp`, `nbf` checked, codes 1000-1004 otherwise), JSON
bodies checked field by field (code 1201 for a bad one, e.g. a `data:` prefix on `image`),
answers `{"code", "message", "request_id", "data"}` with the service code beside the HTTP
status, task words `submitted`, `processing`, `succeed`, `failed`, the reason in
`task_status_msg`, and the video at `task_result.videos[0].url` on a "CDN" (another origin),
a signed link that expires. A create may name its task with `external_task_id` (unique per
account, echoed in `task_info`); a single-task query takes that name as well as `task_id`.
A finished task's video has an id of its own (`task_result.videos[0].id`, the same on every
query); `POST /v1/videos/video-extend` takes it as `video_id` on the account that made it,
for a video of a v1.x model only, and its task's video is the source plus 4.5 s
(https://app.klingai.com/global/dev/document-api/apiReference/model/videoExtension).

In tests::

    fake = FakeKlingUpstream(keys={"AK-test-0001:SK-secret-0001"})
    with fake.serve():                      # the API on fake.url, the CDN on fake.cdn_url
        fake.rate_limit_submits = 2         # fault modes are plain attributes
        ...                                 # fake.requests records every request

As a process, for the benchmark::

    python -m tests.fakes.kling_upstream --port P --min-s 10 --max-s 60 [--keys AK1:SK1,AK2:SK2]

Each task finishes after a random duration in [min, max] seconds; `GET /_stats` reports when
each completed upstream and how many requests named it. A task's state is computed from its
timestamps (no task or sleep per job), so thousands in flight cost nothing. Without `--keys`
any well-formed, unexpired token is accepted (its signature cannot be checked).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import random
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jwt
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.http_server import ThreadedServer
from tests.fakes.media import tiny_mp4

ENDPOINTS = ("text2video", "image2video", "video-extend")
EXTENDABLE_MODELS = frozenset({"kling-v1", "kling-v1-5", "kling-v1-6"})
EXTENSION_S = 4.5
MODELS = frozenset(
    {
        "kling-v1",
        "kling-v1-5",
        "kling-v1-6",
        "kling-v2-master",
        "kling-v2-1",
        "kling-v2-1-master",
        "kling-v2-5-turbo",
        "kling-v2-6",
        "kling-v3",
    }
)
ASPECT_RATIOS = frozenset({"16:9", "9:16", "1:1"})
DURATIONS = frozenset(str(seconds) for seconds in range(3, 16))
DEFAULT_FAILURE = "Failure to pass the risk control system"
_QUEUED_SHARE = 0.1  # the first tenth of a task's duration it is `submitted`, then `processing`


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Lower-case names."""
    access_key: str | None
    """The `iss` of the bearer token, if it was a readable JWT."""
    token_header: dict[str, Any]
    token_claims: dict[str, Any]
    port: int
    """The port it arrived on: `fake.port` for the API, `fake.cdn_port` for the CDN."""
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class FakeTask:
    id: str
    endpoint: str
    model: str
    body: dict[str, Any]
    created_at: float
    duration_s: float
    fails: bool
    account: str | None = None
    """The access key that made it: its video is that account's."""
    video_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    video_duration: str = "5"
    requests: int = 1  # the submit

    @property
    def completes_at(self) -> float:
        return self.created_at + self.duration_s


class FakeKlingUpstream:
    """The fake's state and fault modes; `app` is the Starlette app serving it.

    `keys` are `ACCESS:SECRET` pairs; None accepts any well-formed token. Fault modes are
    documented in `reset`; the counters (`rate_limit_submits`, ...) count down as served.
    """

    def __init__(
        self,
        keys: set[str] | None = None,
        *,
        random_duration_s: tuple[float, float] | None = None,
        record_requests: bool = True,
    ) -> None:
        self.secrets: dict[str, str] | None = None
        if keys is not None:
            self.secrets = dict(key.split(":", 1) for key in keys)
        self.random_duration_s = random_duration_s
        self.record_requests = record_requests
        self.url = ""
        self.cdn_url = ""
        self.reset()
        routes = [
            Route("/_stats", self._stats, methods=["GET"]),
            Route("/cdn/{task_id}.mp4", self._cdn, methods=["GET"]),
        ]
        for endpoint in ENDPOINTS:
            routes += [
                Route(f"/v1/videos/{endpoint}", self._create, methods=["POST"]),
                Route(f"/v1/videos/{endpoint}", self._list, methods=["GET"]),
                Route(f"/v1/videos/{endpoint}/{{task_id}}", self._query, methods=["GET"]),
            ]
        self.app = Starlette(routes=routes)

    def reset(self) -> None:
        """Forget tasks and requests; every fault mode back to "a well-behaved Kling"."""
        self.tasks: dict[str, FakeTask] = {}
        self.requests: list[RecordedRequest] = []
        self.total_requests = 0
        self.job_duration_s = 0.0
        """How long each task runs (unless `random_duration_s` was given)."""
        self.rate_limit_submits = 0
        """This many submits are refused 429, code 1302 (too fast)."""
        self.concurrency_limit_submits = 0
        """This many submits are refused 429, code 1303 (over the resource pack's concurrency)."""
        self.retry_after: str | None = None
        """`Retry-After` sent with 1302/1303 (Kling documents none)."""
        self.server_error_submits = 0
        """This many submits are answered 500, code 5000."""
        self.refuse_credentials = False
        """Every API request is refused 401, code 1000, whatever its token."""
        self.balance_exhausted = False
        """Submits are refused 429, code 1102 (resource pack depleted): no rate limit."""
        self.moderate_submits = False
        """Submits are refused 400, code 1301, in words naming the host, the key and an id."""
        self.fail_jobs = False
        """Tasks end `failed` with `failure_reason` as `task_status_msg`."""
        self.failure_reason = DEFAULT_FAILURE
        self.weird_status_s = 0.0
        """For this long after creation a task's status is `queueing_for_gpu`, a new word."""
        self.forget_tasks = False
        """Queries answer 404, code 1203 (task not found), as for a task Kling does not know."""
        self.content_404s = 0
        """The CDN answers 404 this many times before it serves the video."""
        self.links_valid_from = 0.0
        """Video links issued before this moment (`time.time()`) have expired: the CDN answers
        403 with an XML page, as a signed URL past its expiry does."""
        self.expired_links = 0
        """The CDN answers this many downloads as expired links (403) before it serves one,
        whatever the clock (a test of the refresh that a loaded machine cannot outrun)."""
        self.outage = False
        """Every API route answers 503, code 5001 (maintenance)."""

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def cdn_port(self) -> int:
        return int(self.cdn_url.rsplit(":", 1)[1])

    @contextlib.contextmanager
    def serve(self) -> Iterator[FakeKlingUpstream]:
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
        return [
            recorded
            for recorded in self.requests
            if recorded.method == "POST" and recorded.path.startswith("/v1/videos/")
        ]

    def status_of(self, task: FakeTask, now: float) -> str:
        elapsed = now - task.created_at
        if elapsed < self.weird_status_s:
            return "queueing_for_gpu"
        if elapsed >= task.duration_s:
            return "failed" if task.fails else "succeed"
        return "submitted" if elapsed < task.duration_s * _QUEUED_SHARE else "processing"

    # -- endpoints ------------------------------------------------------------------------

    async def _create(self, request: Request) -> Response:
        body = await _json_body(request)
        recorded = self._record(request, body)
        refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        if self.server_error_submits > 0:
            self.server_error_submits -= 1
            return _error(500, 5000, "Server internal error")
        if self.rate_limit_submits > 0:
            self.rate_limit_submits -= 1
            return _error(429, 1302, "api request too fast", self._slow_down())
        if self.concurrency_limit_submits > 0:
            self.concurrency_limit_submits -= 1
            return _error(429, 1303, "parallel task over resource pack limit", self._slow_down())
        if self.balance_exhausted:
            return _error(429, 1102, "resource pack exhausted or expired")
        if body is None:
            return _error(400, 1200, "request body is not JSON")
        endpoint = request.url.path.rsplit("/", 1)[1]
        account = _issuer(request)
        problem = _body_problem(endpoint, body)
        source = None
        if problem is None and endpoint == "video-extend":
            source, problem = self._extended_video(body, account)
        if problem is not None:
            return _error(400, 1201, problem)
        external = body.get("external_task_id")
        if external is not None and (not isinstance(external, str) or not external):
            return _error(400, 1201, "external_task_id is a non-empty string")
        if external and any(
            t.body.get("external_task_id") == external for t in self.tasks.values()
        ):
            return _error(400, 1201, "external_task_id already exists")
        task_id = str(random.randrange(10**17, 10**18))
        if self.moderate_submits:
            host = request.headers.get("host", "")
            key = recorded.access_key if recorded else ""
            return _error(
                400,
                1301,
                f"Task {task_id} of {key} on {host} triggered the content security policy "
                f"of the platform, see http://{host}/docs/policy",
            )
        low, high = self.random_duration_s or (self.job_duration_s, self.job_duration_s)
        task = FakeTask(
            id=task_id,
            endpoint=endpoint,
            model=source.model if source else str(body.get("model_name") or "kling-v1"),
            body=body,
            created_at=time.time(),
            duration_s=random.uniform(low, high),
            fails=self.fail_jobs,
            account=account,
            video_duration=(
                f"{float(source.video_duration) + EXTENSION_S:g}"
                if source
                else str(body.get("duration", "5"))
            ),
        )
        self.tasks[task.id] = task
        data = {
            "task_id": task.id,
            "task_status": "submitted",
            "task_info": _task_info(task),
            "created_at": int(task.created_at * 1000),
            "updated_at": int(task.created_at * 1000),
        }
        return _answer(data)

    async def _query(self, request: Request) -> Response:
        self._record(request)
        refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        task = self._task_named(request.path_params["task_id"])
        endpoint = request.url.path.split("/")[3]
        if task is not None:
            task.requests += 1
        if task is None or task.endpoint != endpoint or self.forget_tasks:
            return _error(404, 1203, "task not found")
        return _answer(self._task_data(task, request, time.time()))

    def _task_named(self, name: str) -> FakeTask | None:
        """A query names a task by Kling's `task_id` or by the `external_task_id` it was
        created with."""
        found = self.tasks.get(name)
        if found is not None:
            return found
        return next(
            (t for t in self.tasks.values() if t.body.get("external_task_id") == name), None
        )

    async def _list(self, request: Request) -> Response:
        self._record(request)
        refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        try:
            page = int(request.query_params.get("pageNum", "1"))
            size = int(request.query_params.get("pageSize", "30"))
        except ValueError:
            return _error(400, 1201, "pageNum and pageSize are integers")
        if not (1 <= page <= 1000 and 1 <= size <= 500):
            return _error(400, 1201, "pageNum is 1 to 1000, pageSize 1 to 500")
        endpoint = request.url.path.rsplit("/", 1)[1]
        now = time.time()
        mine = [task for task in self.tasks.values() if task.endpoint == endpoint][::-1]
        chosen = mine[(page - 1) * size : page * size]
        return _answer([self._task_data(task, request, now) for task in chosen])

    async def _cdn(self, request: Request) -> Response:
        self._record(request)
        task = self.tasks.get(request.path_params["task_id"])
        if task is None:
            return Response("<html><body>404 Not Found</body></html>", 404, media_type="text/html")
        task.requests += 1
        try:
            issued = float(request.query_params.get("issued", "0"))
        except ValueError:
            issued = 0.0
        expired = self.expired_links > 0
        self.expired_links = max(0, self.expired_links - 1)
        if expired or issued < self.links_valid_from:
            return Response(
                "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                403,
                media_type="application/xml",
            )
        if self.content_404s > 0:
            self.content_404s -= 1
            return Response("<html><body>404 Not Found</body></html>", 404, media_type="text/html")
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

    def _task_data(self, task: FakeTask, request: Request, now: float) -> dict[str, Any]:
        status = self.status_of(task, now)
        data: dict[str, Any] = {
            "task_id": task.id,
            "task_status": status,
            "task_status_msg": self.failure_reason if status == "failed" else "",
            "task_info": _task_info(task),
            "created_at": int(task.created_at * 1000),
            "updated_at": int(min(now, task.completes_at) * 1000),
            "task_result": {},
        }
        if status == "succeed":
            cdn = self.cdn_url or str(request.base_url).rstrip("/")
            link = f"{cdn}/cdn/{task.id}.mp4?issued={now!r}&sig={secrets.token_hex(8)}"
            data["task_result"] = {
                "videos": [{"id": task.video_id, "url": link, "duration": task.video_duration}]
            }
            data["final_unit_deduction"] = "1"
        return data

    def _extended_video(
        self, body: dict[str, Any], account: str | None
    ) -> tuple[FakeTask | None, str | None]:
        """The finished task whose video an extension names, on the caller's account; else
        what Kling says is wrong."""
        now = time.time()
        source = next(
            (
                task
                for task in self.tasks.values()
                if task.video_id == body["video_id"]
                and task.account == account
                and self.status_of(task, now) == "succeed"
            ),
            None,
        )
        if source is None:
            return None, f"video_id {body['video_id']!r} is not a video of this account"
        if source.model not in EXTENDABLE_MODELS:
            return None, f"videos of {source.model} cannot be extended"
        return source, None

    def _slow_down(self) -> dict[str, str]:
        return {"retry-after": self.retry_after} if self.retry_after is not None else {}

    def _authorise(self, request: Request) -> Response | None:
        """Kling's checks of the bearer token, in its codes; None when it is good."""
        if self.outage:
            return _error(503, 5001, "Server temporarily unavailable, usually due to maintenance")
        if self.refuse_credentials:
            return _error(401, 1000, "Authentication failed")
        token = _bearer(request)
        if token is None:
            return _error(401, 1001, "Authorization is empty")
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return _error(401, 1002, "Authorization is invalid")
        issuer = claims.get("iss")
        if header.get("alg") != "HS256" or not isinstance(issuer, str) or not issuer:
            return _error(401, 1002, "Authorization is invalid")
        secret = self.secrets.get(issuer) if self.secrets is not None else None
        if self.secrets is not None and secret is None:
            return _error(401, 1002, "Authorization is invalid")
        try:
            jwt.decode(
                token,
                secret or "",
                algorithms=["HS256"],
                options={
                    "require": ["iss", "exp", "nbf"],
                    "verify_signature": secret is not None,
                    "verify_exp": True,
                    "verify_nbf": True,
                },
            )
        except jwt.ImmatureSignatureError:
            return _error(401, 1003, "Authorization is not yet valid")
        except jwt.ExpiredSignatureError:
            return _error(401, 1004, "Authorization has expired")
        except jwt.PyJWTError:
            return _error(401, 1002, "Authorization is invalid")
        return None

    def _record(
        self, request: Request, body: dict[str, Any] | None = None
    ) -> RecordedRequest | None:
        self.total_requests += 1
        if not self.record_requests:
            return None
        token = _bearer(request)
        header: dict[str, Any] = {}
        claims: dict[str, Any] = {}
        if token is not None:
            with contextlib.suppress(jwt.PyJWTError):
                header = jwt.get_unverified_header(token)
                claims = jwt.decode(token, options={"verify_signature": False})
        issuer = claims.get("iss")
        recorded = RecordedRequest(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers={name.lower(): value for name, value in request.headers.items()},
            access_key=issuer if isinstance(issuer, str) else None,
            token_header=header,
            token_claims=claims,
            port=int(request.scope["server"][1]),
            body=body or {},
        )
        self.requests.append(recorded)
        return recorded


def _body_problem(endpoint: str, body: dict[str, Any]) -> str | None:
    """What Kling's documentation says is wrong with a create body (None: nothing)."""
    if endpoint == "video-extend":
        return _extension_problem(body)
    model = body.get("model_name", "kling-v1")
    if model not in MODELS:
        return f"model_name {model!r} is invalid"
    prompt = body.get("prompt")
    if prompt is not None and (not isinstance(prompt, str) or len(prompt) > 2500):
        return "prompt cannot exceed 2500 characters"
    if endpoint == "text2video" and not prompt:
        return "prompt is required"
    if body.get("mode", "std") not in ("std", "pro"):
        return "mode is std or pro"
    duration = body.get("duration", "5")
    if not isinstance(duration, str) or duration not in DURATIONS:
        return "duration is a string from 3 to 15"
    if body.get("sound", "off") not in ("on", "off"):
        return "sound is on or off"
    if endpoint == "text2video":
        if body.get("aspect_ratio", "16:9") not in ASPECT_RATIOS:
            return "aspect_ratio is 16:9, 9:16 or 1:1"
        return None
    image = body.get("image")
    if not isinstance(image, str) or not image:
        return "image is required"
    if image.startswith("data:"):
        return "image: send the Base64 string itself, without a data: prefix"
    if not image.startswith(("http://", "https://")):
        try:
            base64.b64decode(image, validate=True)
        except (binascii.Error, ValueError):
            return "image is neither a URL nor Base64"
    return None


def _extension_problem(body: dict[str, Any]) -> str | None:
    """An extension takes the source's model and mode: it names neither, nor a length."""
    video_id = body.get("video_id")
    if not isinstance(video_id, str) or not video_id:
        return "video_id is required"
    prompt = body.get("prompt")
    if prompt is not None and (not isinstance(prompt, str) or len(prompt) > 2500):
        return "prompt cannot exceed 2500 characters"
    unknown = set(body) - {"video_id", "prompt", "negative_prompt", "cfg_scale", "callback_url",
                           "external_task_id"}  # fmt: skip
    return f"unknown field {sorted(unknown)[0]}" if unknown else None


def _issuer(request: Request) -> str | None:
    token = _bearer(request)
    if token is None:
        return None
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        return None
    return issuer if isinstance(issuer, str) else None


def _task_info(task: FakeTask) -> dict[str, str]:
    external = task.body.get("external_task_id")
    return {"external_task_id": external} if isinstance(external, str) else {}


async def _json_body(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _answer(data: object) -> JSONResponse:
    return JSONResponse(
        {"code": 0, "message": "SUCCEED", "request_id": str(uuid.uuid4()), "data": data}
    )


def _error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"code": code, "message": message, "request_id": str(uuid.uuid4())}
    return JSONResponse(body, status_code=status, headers=headers)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake Kling AI API for benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--min-s", type=float, default=10.0, help="shortest task duration")
    parser.add_argument("--max-s", type=float, default=60.0, help="longest task duration")
    parser.add_argument(
        "--keys", default="", help="accepted ACCESS:SECRET pairs, comma-separated (any if empty)"
    )
    arguments = parser.parse_args(argv)
    keys = {key for key in arguments.keys.split(",") if key} or None
    fake = FakeKlingUpstream(
        keys, random_duration_s=(arguments.min_s, arguments.max_s), record_requests=False
    )
    uvicorn.run(
        fake.app, host=arguments.host, port=arguments.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
