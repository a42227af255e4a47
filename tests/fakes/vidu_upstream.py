"""A fake Vidu API (https://platform.vidu.com/docs) over real HTTP.

It speaks the documented wire protocol: `POST /ent/v2/text2video` and `/ent/v2/img2video`
(JSON, `Authorization: Token <key>`) answer `{"task_id", "state": "created", …}`;
`GET /ent/v2/tasks/{id}/creations` answers `{"id", "state", "err_code", "credits",
"creations": [{"id", "url", "cover_url"}]}` with `state` going created → queueing →
processing → success | failed; `GET /ent/v2/credits` tells the account's balance. Errors are
`{"code", "reason", "message", "metadata"}` with the HTTP status of the docs' error-code
table. The video lives on a "CDN" on another port (another origin) behind signed URLs that
expire.

In tests::

    fake = FakeViduUpstream(keys={"vidu-key-0001"})
    with fake.serve():                  # the API on fake.url, the CDN on fake.cdn_url
        fake.rate_limited_submits = 2   # fault modes are plain attributes (see `reset`)
        ...                             # fake.requests records every request

As a process, for the benchmark::

    python -m tests.fakes.vidu_upstream --port P --min-s 10 --max-s 60 [--keys k1,k2]

Each job finishes after a random duration in [min, max] seconds; `GET /_stats` reports when
each job completed upstream and how many requests named it. A job's state is computed from
its timestamps (no task or sleep per job), so thousands of jobs in flight cost nothing.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import hashlib
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.http_server import ThreadedServer
from tests.fakes.media import tiny_image, tiny_mp4

RESOLUTIONS = ("360p", "540p", "720p", "1080p")
ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4")
MOVEMENT_AMPLITUDES = ("auto", "small", "medium", "large")
_CREATED_SHARE, _QUEUEING_SHARE = 0.05, 0.15  # of a job's duration, then processing
_SIGNING_SECRET = "fake-cdn-signing-secret"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Lower-case names."""
    key: str | None
    """The `Token` key sent, if any."""
    port: int
    """The port it arrived on: `fake.port` for the API, `fake.cdn_port` for the CDN."""
    json: dict[str, Any] | None = None


@dataclass(slots=True)
class FakeTask:
    id: str
    creation_id: str
    kind: str
    """`text2video` or `img2video`."""
    body: dict[str, Any]
    created_at: float
    duration_s: float
    err_code: str | None
    """Set: the task ends `failed` with this code."""
    requests: int = 1  # the submit

    @property
    def completes_at(self) -> float:
        return self.created_at + self.duration_s


class FakeViduUpstream:
    """The fake's state and fault modes; `app` is the Starlette app serving API and CDN.

    `keys=None` accepts any key. Counters (`rate_limited_submits`, …) count down as the
    faults are served.
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
                Route("/ent/v2/text2video", self._text2video, methods=["POST"]),
                Route("/ent/v2/img2video", self._img2video, methods=["POST"]),
                Route("/ent/v2/tasks/{task_id}/creations", self._creations, methods=["GET"]),
                Route("/ent/v2/credits", self._credits, methods=["GET"]),
                Route("/cdn/{task_id}/{file}", self._cdn, methods=["GET"]),
                Route("/_stats", self._stats, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        """Forget tasks and requests; every fault mode back to "a well-behaved Vidu"."""
        self.tasks: dict[str, FakeTask] = {}
        self.requests: list[RecordedRequest] = []
        self.total_requests = 0
        self._next_id = 880_000_000_000_000_000 + random.randrange(10**15)
        self.job_duration_s = 0.0
        """How long each task runs (unless `random_duration_s` was given)."""
        self.rate_limited_submits = 0
        """Submits answered 429 `TooManyRequests`, with `retry_after`."""
        self.rate_limited_polls = 0
        self.retry_after = "3"
        self.submit_500s = 0
        """Submits answered 500 `InternalServiceFailure`."""
        self.moderate_submits = False
        """Submits refused 400 `AuditSubmitIllegal` with `moderation_message`."""
        self.moderation_message = "submit is illegal"
        self.balance_exhausted = False
        """Submits refused 400 `CreditInsufficient`; `/ent/v2/credits` says 0 remain."""
        self.offer_credits_lookup = True
        """False: `GET /ent/v2/credits` is 404, as on a relay that speaks only Vidu's tasks."""
        self.fail_tasks_with: str | None = None
        """Tasks end `failed` with this `err_code` (`CreationPolicyViolation`, …, or "")."""
        self.unknown_state_s = 0.0
        """For this long after creation a task's state is `unknown_state`."""
        self.unknown_state = "scheduling"
        self.lose_tasks = False
        """Every look-up answers 404 `TaskNotFound`, as for a task Vidu no longer knows."""
        self.content_404s = 0
        """CDN downloads answered 404 before the video is served."""
        self.url_ttl_s = 3600.0
        """How long a creation URL stays valid; negative: issued already expired."""
        self.expired_urls = 0
        """The next this many creation URLs are issued already expired (the CDN answers 403)."""
        self.submit_raw_body: str | None = None
        """Submits answer 200 with this body as is (no task is made)."""
        self.outage = False
        """Every API route answers 503."""

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def cdn_port(self) -> int:
        return int(self.cdn_url.rsplit(":", 1)[1])

    @contextlib.contextmanager
    def serve(self) -> Iterator[FakeViduUpstream]:
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
        return [r for r in self.requests if r.method == "POST" and r.path.startswith("/ent/v2/")]

    def state_of(self, task: FakeTask, now: float) -> str:
        elapsed = now - task.created_at
        if elapsed < self.unknown_state_s:
            return self.unknown_state
        if elapsed >= task.duration_s:
            return "failed" if task.err_code is not None else "success"
        if elapsed < task.duration_s * _CREATED_SHARE:
            return "created"
        return "queueing" if elapsed < task.duration_s * _QUEUEING_SHARE else "processing"

    # -- endpoints ------------------------------------------------------------------------

    async def _text2video(self, request: Request) -> Response:
        return await self._submit(request, "text2video")

    async def _img2video(self, request: Request) -> Response:
        return await self._submit(request, "img2video")

    async def _submit(self, request: Request, kind: str) -> Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        self._record(request, body if isinstance(body, dict) else None)
        key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        if self.submit_500s > 0:
            self.submit_500s -= 1
            return _error(500, "InternalServiceFailure", "internal service failure")
        if self.rate_limited_submits > 0:
            self.rate_limited_submits -= 1
            return _error(
                429, "TooManyRequests", "too many requests", {"retry-after": self.retry_after}
            )
        if self.submit_raw_body is not None:
            return Response(self.submit_raw_body, media_type="application/json")
        if not isinstance(body, dict):
            return _error(400, "BadRequest", "bad request")
        problem = _invalid(body, kind)
        if problem is not None:
            return problem
        task_id = self._new_id()
        if self.moderate_submits:
            host = request.headers.get("host", "")
            message = self.moderation_message.format(task_id=task_id, host=host, key=key)
            return _error(400, "AuditSubmitIllegal", message)
        if self.balance_exhausted:
            return _error(400, "CreditInsufficient", "insufficient credits")
        low, high = self.random_duration_s or (self.job_duration_s, self.job_duration_s)
        task = FakeTask(
            id=task_id,
            creation_id=self._new_id(),
            kind=kind,
            body=body,
            created_at=time.time(),
            duration_s=random.uniform(low, high),
            err_code=self.fail_tasks_with,
        )
        self.tasks[task.id] = task
        answer = {
            "task_id": task.id,
            "type": kind,
            "state": "created",
            "model": body["model"],
            "prompt": body.get("prompt", ""),
            "duration": body.get("duration", 5),
            "seed": body.get("seed") or random.randrange(1, 2**31),
            "resolution": body.get("resolution", "720p"),
            "movement_amplitude": body.get("movement_amplitude", "auto"),
            "payload": body.get("payload", ""),
            "off_peak": bool(body.get("off_peak", False)),
            "credits": 10,
            "created_at": datetime.fromtimestamp(task.created_at, UTC).isoformat(),
        }
        if kind == "text2video":
            answer["aspect_ratio"] = body.get("aspect_ratio", "16:9")
        return JSONResponse(answer)

    async def _creations(self, request: Request) -> Response:
        self._record(request)
        _key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        task = self.tasks.get(request.path_params["task_id"])
        if task is None or self.lose_tasks:
            return _error(404, "TaskNotFound", "task not found")
        task.requests += 1
        if self.rate_limited_polls > 0:
            self.rate_limited_polls -= 1
            return _error(
                429, "TooManyRequests", "too many requests", {"retry-after": self.retry_after}
            )
        now = time.time()
        state = self.state_of(task, now)
        creations = []
        if state == "success":
            cdn = self.cdn_url or str(request.base_url).rstrip("/")
            expires = int(now + self.url_ttl_s)
            if self.expired_urls > 0:
                self.expired_urls -= 1
                expires = int(now) - 60
            creations.append(
                {
                    "id": task.creation_id,
                    "url": _signed(f"{cdn}/cdn/{task.id}/{task.creation_id}.mp4", expires),
                    "cover_url": _signed(f"{cdn}/cdn/{task.id}/{task.creation_id}.jpg", expires),
                }
            )
        return JSONResponse(
            {
                "id": task.id,
                "state": state,
                "err_code": task.err_code if state == "failed" else "",
                "credits": 10 if state == "success" else 0,
                "payload": task.body.get("payload", ""),
                "bgm": bool(task.body.get("bgm", False)),
                "off_peak": bool(task.body.get("off_peak", False)),
                "creations": creations,
            }
        )

    async def _credits(self, request: Request) -> Response:
        self._record(request)
        _key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        if not self.offer_credits_lookup:
            return _error(404, "NotFound", "not found")
        now = time.time()
        running = sum(1 for task in self.tasks.values() if task.completes_at > now)
        remain = 0 if self.balance_exhausted else 100_000
        body: dict[str, Any] = {
            "remains": [
                {
                    "type": "metered",
                    "credit_remain": remain,
                    "concurrency_limit": 50,
                    "current_concurrency": running,
                    "queue_count": 0,
                }
            ]
        }
        if request.query_params.get("show_detail") == "true":
            body["packages"] = [
                {
                    "id": "1",
                    "name": "credits",
                    "type": "metered",
                    "concurrency": 50,
                    "credit_amount": 100_000,
                    "credit_remain": remain,
                }
            ]
        return JSONResponse(body)

    async def _cdn(self, request: Request) -> Response:
        self._record(request)
        task = self.tasks.get(request.path_params["task_id"])
        name = request.path_params["file"]
        if task is None or not name.startswith(task.creation_id):
            return Response("<html><body>404 Not Found</body></html>", 404, media_type="text/html")
        task.requests += 1
        expires = request.query_params.get("expires", "0")
        signature = request.query_params.get("signature", "")
        path = f"/cdn/{task.id}/{name}"
        if not expires.isdigit() or signature != _signature(path, int(expires)):
            return _expired("Signature does not match")
        if int(expires) < time.time():
            return _expired("Request has expired")
        if self.content_404s > 0:
            self.content_404s -= 1
            return Response("<html><body>404 Not Found</body></html>", 404, media_type="text/html")
        if name.endswith(".jpg"):
            return Response(tiny_image("JPEG"), media_type="image/jpeg")
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

    def _new_id(self) -> str:
        self._next_id += random.randrange(1, 10**6)
        return str(self._next_id)

    def _authorise(self, request: Request) -> tuple[str | None, Response | None]:
        key = _token(request)
        if self.outage:
            return key, _error(503, "ServiceUnavailable", "service unavailable")
        if key is None or (self.keys is not None and key not in self.keys):
            return key, _error(401, "Unauthorized", "unauthorized")
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
                key=_token(request),
                port=int(request.scope["server"][1]),
                json=body,
            )
        )


def _invalid(body: dict[str, Any], kind: str) -> Response | None:
    """Vidu's own checks of a submit body, as its error-code page names them."""
    if not isinstance(body.get("model"), str) or not body["model"]:
        return _error(400, "FieldLacking", "field is missing or empty: model")
    if kind == "text2video":
        if not isinstance(body.get("prompt"), str) or not body["prompt"]:
            return _error(400, "FieldLacking", "field is missing or empty: prompt")
        if "images" in body:
            return _error(400, "FieldUnwanted", "unwanted field: images")
        if body.get("aspect_ratio", "16:9") not in ASPECT_RATIOS:
            return _error(400, "FieldInvalid", "invalid field: aspect_ratio")
    else:
        images = body.get("images")
        if not isinstance(images, list) or len(images) != 1:
            return _error(400, "FieldItemCountOutOfRange", "field item count out of range: images")
        if "aspect_ratio" in body or "style" in body:
            return _error(400, "FieldUnwanted", "unwanted field: aspect_ratio, style")
        if not _valid_image(images[0]):
            return _error(400, "ImageFormatInvalid", "invalid image format")
    duration = body.get("duration", 5)
    if isinstance(duration, bool) or not isinstance(duration, int) or not 1 <= duration <= 16:
        return _error(400, "FieldInvalid", "invalid field: duration")
    if body.get("resolution", "720p") not in RESOLUTIONS:
        return _error(400, "FieldInvalid", "invalid field: resolution")
    if body.get("movement_amplitude", "auto") not in MOVEMENT_AMPLITUDES:
        return _error(400, "FieldInvalid", "invalid field: movement_amplitude")
    for flag in ("bgm", "audio", "off_peak", "watermark"):
        if flag in body and not isinstance(body[flag], bool):
            return _error(400, "FieldInvalid", f"invalid field: {flag}")
    return None


def _valid_image(image: object) -> bool:
    """A public URL, or base64 that carries its content type (`data:image/png;base64,…`)."""
    if not isinstance(image, str):
        return False
    if image.startswith(("http://", "https://")):
        return True
    prefix, _, data = image.partition(",")
    if prefix not in ("data:image/png;base64", "data:image/jpeg;base64", "data:image/webp;base64"):
        return False
    try:
        base64.b64decode(data, validate=True)
    except binascii.Error:
        return False
    return True


def _signature(path: str, expires: int) -> str:
    return hashlib.sha256(f"{_SIGNING_SECRET}:{path}:{expires}".encode()).hexdigest()[:32]


def _signed(url: str, expires: int) -> str:
    path = "/" + url.split("/", 3)[3]
    return f"{url}?expires={expires}&signature={_signature(path, expires)}"


def _expired(message: str) -> Response:
    return Response(
        f"<Error><Code>AccessDenied</Code><Message>{message}</Message></Error>",
        403,
        media_type="application/xml",
    )


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    return key.strip() if scheme == "Token" and key.strip() else None


def _error(
    status: int, reason: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"code": status, "reason": reason, "message": message, "metadata": {}}
    return JSONResponse(body, status_code=status, headers=headers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake Vidu API for benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--min-s", type=float, default=10.0, help="shortest job duration")
    parser.add_argument("--max-s", type=float, default=60.0, help="longest job duration")
    parser.add_argument("--keys", default="", help="accepted keys, comma-separated (any if empty)")
    arguments = parser.parse_args(argv)
    keys = {key for key in arguments.keys.split(",") if key} or None
    fake = FakeViduUpstream(
        keys, random_duration_s=(arguments.min_s, arguments.max_s), record_requests=False
    )
    uvicorn.run(
        fake.app, host=arguments.host, port=arguments.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
