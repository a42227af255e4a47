"""A fake Gemini API serving Veo (`predictLongRunning` + operations) over real HTTP.

It speaks the wire protocol as https://ai.google.dev/gemini-api/docs/video documents it: the
key in `x-goog-api-key`, `POST /v1beta/models/{model}:predictLongRunning` answering an
operation name, `GET /v1beta/{name}` answering the operation (`done`, `error`, `response.
generateVideoResponse.generatedSamples[0].video.uri`), the video at `/v1beta/files/{id}:download
?alt=media` on the API host (refused without the key) redirecting to storage on another port
("the CDN"), and Google's error bodies (`{"error": {"code", "message", "status", "details"}}`).
An extension ("Extending Veo videos") is a submit to a Veo 3.1 model whose instance names, as
`video.uri`, the video a finished operation of the same key answered, at 720p.

In tests::

    fake = FakeGeminiUpstream(keys={"AIza-test-0001"})
    with fake.serve():                      # the API on fake.url, storage on fake.cdn_url
        fake.submit_429s = 2                # fault modes are plain attributes (see `reset`)
        ...                                 # fake.requests records every request

As a process, for the benchmark::

    python -m tests.fakes.gemini_upstream --port P --min-s 10 --max-s 60 [--keys k1,k2]

Each job finishes after a random duration in [min, max] seconds; `GET /_stats` reports when
each job completed upstream and how many requests named it. A job's state is computed from its
timestamps (no task or sleep per job), so thousands of jobs in flight cost nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from tests.fakes.http_server import ThreadedServer
from tests.fakes.media import tiny_image, tiny_mp4

EXTENDING_MODELS = ("veo-3.1-generate-preview", "veo-3.1-fast-generate-preview")
VEO_MODELS = (
    "veo-3.1-generate-preview",
    "veo-3.1-fast-generate-preview",
    "veo-3.1-lite-generate-preview",
    "veo-3.0-generate-001",
    "veo-3.0-fast-generate-001",
    "veo-2.0-generate-001",
)
RESPONSE_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
DEFAULT_FAILURE: dict[str, Any] = {
    "code": 13,
    "message": "Video generation failed due to an internal error. Please try again.",
}
DEFAULT_FILTER_REASON = (
    "Your current safety settings for person generation prevent this video from being "
    "generated. Support codes: 39322892"
)
WEIRD_DONE = "PENDING_REVIEW"
"""What `done` says during `weird_status_s`: a word where the boolean belongs."""

__all__ = ["DEFAULT_FAILURE", "FakeGeminiUpstream", "tiny_image", "tiny_mp4"]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Lower-case names."""
    key: str | None
    """The `x-goog-api-key` sent, if any."""
    port: int
    """The port it arrived on: `fake.port` for the API, `fake.cdn_port` for storage."""
    json: Any = None


@dataclass(slots=True)
class FakeOperation:
    name: str
    """`models/{model}/operations/{id}`: the upstream job id."""
    id: str
    model: str
    body: Any
    created_at: float
    duration_s: float
    fails: bool
    filtered: bool
    key: str | None = None
    """The key that made it: its video is that project's."""
    extends: str | None = None
    """The name of the operation whose video it extends."""
    requests: int = 1  # the submit
    link_serial: int = 0
    """The video's current link is `files/{id}-{link_serial}`."""

    @property
    def completes_at(self) -> float:
        return self.created_at + self.duration_s


class FakeGeminiUpstream:
    """The fake's state and fault modes; `app` is the Starlette app serving it.

    `keys=None` accepts any key. Fault-mode attributes are documented in `reset`; the counters
    (`submit_429s`, ...) count down as the faults are served.
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
        self._stopping = False
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/v1beta/models", self._list_models, methods=["GET"]),
                Route("/v1beta/models/{model}:predictLongRunning", self._predict, methods=["POST"]),
                Route(
                    "/v1beta/models/{model}/operations/{operation_id}",
                    self._get_operation,
                    methods=["GET"],
                ),
                Route("/v1beta/files/{file_id}:download", self._download, methods=["GET"]),
                Route("/cdn/{file_id}.mp4", self._cdn, methods=["GET"]),
                Route("/_stats", self._stats, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        """Forget jobs and requests; every fault mode back to "a well-behaved Gemini API"."""
        self.operations: dict[str, FakeOperation] = {}
        """By operation name."""
        self.requests: list[RecordedRequest] = []
        self.total_requests = 0
        self.job_duration_s = 0.0
        """How long each job runs (unless `random_duration_s` was given)."""
        self.submit_429s = 0
        """Submits refused 429 RESOURCE_EXHAUSTED (a quota) with a RetryInfo detail."""
        self.poll_429s = 0
        self.retry_delay = "3s"
        """The `google.rpc.RetryInfo` `retryDelay` sent with every 429."""
        self.submit_500s = 0
        """Submits answered 500 INTERNAL."""
        self.submit_hang_s = 0.0
        """A submit answers only after this long (or when the client gives up)."""
        self.outage = False
        """Every API route answers 503 UNAVAILABLE."""
        self.balance_exhausted = False
        """Submits refused 429 RESOURCE_EXHAUSTED: "Your prepayment credits are depleted"."""
        self.moderate_submits = False
        """Submits refused 400 INVALID_ARGUMENT for the prompt's content, in a message that
        names the host, an operation and the key."""
        self.fail_jobs = False
        """Jobs end `done` with `failure_error` instead of a video."""
        self.failure_error: dict[str, Any] = DEFAULT_FAILURE
        self.filter_jobs = False
        """Jobs end `done` with no sample but `raiMediaFilteredCount`/`Reasons` (safety)."""
        self.filter_reasons: list[str] = [DEFAULT_FILTER_REASON]
        self.weird_status_s = 0.0
        """For this long after creation an operation's `done` is WEIRD_DONE, not a boolean."""
        self.lost_polls = 0
        """Operation reads answered 404 NOT_FOUND, as for one the service no longer knows."""
        self.content_404s = 0
        """File downloads answered 404 NOT_FOUND before the video is served."""
        self.stale_links = 0
        """The next video links operations name are already expired (404 at download); an
        operation then names a fresh link the next time it is read."""
        self.expired_files: set[str] = set()
        self.content_is_html_page = False
        """A file download answers 200 with an HTML page."""
        self.submit_raw_body: str | None = None
        """Submits answer 200 with this body as is (no job is made)."""

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def cdn_port(self) -> int:
        return int(self.cdn_url.rsplit(":", 1)[1])

    @contextlib.contextmanager
    def serve(self) -> Iterator[FakeGeminiUpstream]:
        """Run the API and, on another port (another origin), storage, in threads."""
        self._stopping = False
        with ThreadedServer(self.app) as api, ThreadedServer(self.app) as cdn:
            self.url, self.cdn_url = api.url, cdn.url
            try:
                yield self
            finally:
                self._stopping = True  # hanging handlers return, so the servers can stop

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        return [
            recorded
            for recorded in self.requests
            if recorded.path == path and (method is None or recorded.method == method)
        ]

    def submits(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith(":predictLongRunning")]

    # -- endpoints ------------------------------------------------------------------------

    async def _predict(self, request: Request) -> Response:
        recorded = await self._record(request, with_json=True)
        key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        if self.submit_hang_s:
            await self._hang(request, self.submit_hang_s)
        model = request.path_params["model"]
        if model not in VEO_MODELS:
            return _error(
                404,
                "NOT_FOUND",
                f"models/{model} is not found for API version v1beta, or is not supported "
                "for predictLongRunning. Call ListModels to see the list of available models "
                "and their supported methods.",
            )
        if self.submit_500s > 0:
            self.submit_500s -= 1
            return _error(500, "INTERNAL", "An internal error has occurred.")
        if self.balance_exhausted:
            return _error(
                429,
                "RESOURCE_EXHAUSTED",
                "Your prepayment credits are depleted. Please go to AI Studio at "
                "https://ai.studio/projects to manage your project and billing.",
            )
        if self.submit_429s > 0:
            self.submit_429s -= 1
            return self._quota_error()
        if self.submit_raw_body is not None:
            return Response(self.submit_raw_body, media_type="application/json")
        body = recorded.json if recorded else await _json_body(request)
        problem = _invalid_argument(body)
        source = None
        if not problem and "video" in body["instances"][0]:
            source, problem = self._extended_video(model, body, key)
        if problem:
            return _error(400, "INVALID_ARGUMENT", problem)
        operation_id = secrets.token_hex(6)
        name = f"models/{model}/operations/{operation_id}"
        if self.moderate_submits:
            host = request.headers.get("host", "")
            return _error(
                400,
                "INVALID_ARGUMENT",
                f"Operation {name} on {host} (key {key}) was blocked: the prompt contains "
                f"words that violate the usage guidelines. See http://{host}/docs/safety",
            )
        low, high = self.random_duration_s or (self.job_duration_s, self.job_duration_s)
        self.operations[name] = FakeOperation(
            name=name,
            id=operation_id,
            model=model,
            body=body,
            created_at=time.time(),
            duration_s=random.uniform(low, high),
            fails=self.fail_jobs,
            filtered=self.filter_jobs,
            key=key,
            extends=source.name if source else None,
        )
        return JSONResponse({"name": name})

    async def _get_operation(self, request: Request) -> Response:
        await self._record(request)
        _key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        name = f"models/{request.path_params['model']}/operations/"
        operation = self.operations.get(name + request.path_params["operation_id"])
        if operation is not None:
            operation.requests += 1
        if operation is None or self.lost_polls > 0:
            self.lost_polls = max(0, self.lost_polls - 1) if operation else self.lost_polls
            return _error(404, "NOT_FOUND", "Operation not found.")
        if self.poll_429s > 0:
            self.poll_429s -= 1
            return self._quota_error()
        return JSONResponse(self.operation_body(operation, request, time.time()))

    async def _list_models(self, request: Request) -> Response:
        await self._record(request)
        _key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        size = int(request.query_params.get("pageSize", "50"))
        models = [
            {
                "name": f"models/{model}",
                "version": "3.1",
                "displayName": model,
                "supportedGenerationMethods": ["predictLongRunning"],
            }
            for model in VEO_MODELS[:size]
        ]
        return JSONResponse({"models": models, "nextPageToken": "page-2"})

    async def _download(self, request: Request) -> Response:
        await self._record(request)
        _key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        file_id = request.path_params["file_id"]
        operation = self._finished_operation(file_id)
        if operation is None:
            return _error(404, "NOT_FOUND", f"File files/{file_id} not found.")
        if self.content_404s > 0:
            self.content_404s -= 1
            return _error(404, "NOT_FOUND", f"File files/{file_id} is not ready.")
        if file_id in self.expired_files:
            return _error(404, "NOT_FOUND", f"File files/{file_id} has expired.")
        if self.content_is_html_page:
            return Response("<!DOCTYPE html><html>Gateway error</html>", media_type="text/html")
        storage = self.cdn_url or str(request.base_url).rstrip("/")
        return RedirectResponse(f"{storage}/cdn/{file_id}.mp4", status_code=302)

    async def _cdn(self, request: Request) -> Response:
        await self._record(request)
        if self._finished_operation(request.path_params["file_id"]) is None:
            return Response("<html><body>404 Not Found</body></html>", 404, media_type="text/html")
        return Response(tiny_mp4(), media_type="video/mp4")

    async def _stats(self, request: Request) -> Response:
        now = time.time()
        jobs = {
            operation.name: {
                "completed_at": operation.completes_at if operation.completes_at <= now else None,
                "requests": operation.requests,
            }
            for operation in self.operations.values()
        }
        return JSONResponse({"jobs": jobs, "total_requests": self.total_requests})

    # -- helpers --------------------------------------------------------------------------

    def operation_body(
        self, operation: FakeOperation, request: Request, now: float
    ) -> dict[str, Any]:
        elapsed = now - operation.created_at
        if elapsed < self.weird_status_s:
            return {"name": operation.name, "done": WEIRD_DONE}
        if now < operation.completes_at:
            return {"name": operation.name}
        if operation.fails:
            return {"name": operation.name, "done": True, "error": self.failure_error}
        if operation.filtered:
            result: dict[str, Any] = {
                "raiMediaFilteredCount": len(self.filter_reasons) or 1,
                "raiMediaFilteredReasons": self.filter_reasons,
            }
        else:
            api = self.url or str(request.base_url).rstrip("/")
            uri = f"{api}/v1beta/files/{self._current_link(operation)}:download?alt=media"
            result = {"generatedSamples": [{"video": {"uri": uri}}]}
        return {
            "name": operation.name,
            "done": True,
            "response": {"@type": RESPONSE_TYPE, "generateVideoResponse": result},
        }

    def _extended_video(
        self, model: str, body: dict[str, Any], key: str | None
    ) -> tuple[FakeOperation | None, str | None]:
        """The finished operation whose video an extension names, made with this key; else
        the API's complaint."""
        if model not in EXTENDING_MODELS:
            return None, f"Video extension is not supported by models/{model}."
        if body.get("parameters", {}).get("resolution", "720p") != "720p":
            return None, "parameters.resolution: video extension supports 720p only."
        uri = body["instances"][0]["video"].get("uri")
        prefix = f"{self.url}/v1beta/files/"
        file_id = uri[len(prefix) :].partition(":")[0]
        source = self._finished_operation(file_id) if uri.startswith(prefix) else None
        if source is None or source.key != key:
            return None, "instances[0].video: the video was not found."
        return source, None

    def _current_link(self, operation: FakeOperation) -> str:
        if self.stale_links > 0:
            self.stale_links -= 1
            operation.link_serial += 1
            self.expired_files.add(f"{operation.id}-{operation.link_serial}")
        elif f"{operation.id}-{operation.link_serial}" in self.expired_files:
            operation.link_serial += 1
        return f"{operation.id}-{operation.link_serial}"

    def _finished_operation(self, file_id: str) -> FakeOperation | None:
        operation_id, _, minted = file_id.partition("-")
        found = next((op for op in self.operations.values() if op.id == operation_id), None)
        if found is None or not minted.isdigit():
            return None
        found.requests += 1
        if time.time() < found.completes_at or found.fails or found.filtered:
            return None
        return found

    def _authorise(self, request: Request) -> tuple[str | None, Response | None]:
        key = request.headers.get("x-goog-api-key") or None
        if self.outage:
            return key, _error(503, "UNAVAILABLE", "The service is currently unavailable.")
        if key is None:
            return key, _error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API.",
            )
        if self.keys is not None and key not in self.keys:
            return key, _error(
                400,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                details=[
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "API_KEY_INVALID",
                        "domain": "googleapis.com",
                        "metadata": {"service": "generativelanguage.googleapis.com"},
                    },
                    {
                        "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                        "locale": "en-US",
                        "message": "API key not valid. Please pass a valid API key.",
                    },
                ],
            )
        return key, None

    def _quota_error(self) -> Response:
        return _error(
            429,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details. "
            "For more information on this error, head to: "
            "https://ai.google.dev/gemini-api/docs/rate-limits.",
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": "generativelanguage.googleapis.com/"
                            "predict_long_running_requests",
                            "quotaId": "PredictLongRunningRequestsPerMinutePerProjectPerModel",
                        }
                    ],
                },
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": self.retry_delay,
                },
            ],
        )

    async def _record(self, request: Request, with_json: bool = False) -> RecordedRequest | None:
        self.total_requests += 1
        if not self.record_requests:
            return None
        body = await _json_body(request) if with_json else None
        recorded = RecordedRequest(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers={name.lower(): value for name, value in request.headers.items()},
            key=request.headers.get("x-goog-api-key"),
            port=int(request.scope["server"][1]),
            json=body,
        )
        self.requests.append(recorded)
        return recorded

    async def _hang(self, request: Request, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self._stopping:
            if await request.is_disconnected():
                return
            await asyncio.sleep(0.05)


async def _json_body(request: Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None


def _invalid_argument(body: Any) -> str | None:
    """What the API would refuse in a submit body, as its message; None when well-formed."""
    if not isinstance(body, dict):
        return "Invalid JSON payload received."
    instances = body.get("instances")
    if not isinstance(instances, list) or len(instances) != 1 or not isinstance(instances[0], dict):
        return "instances: exactly one instance is supported."
    instance = instances[0]
    if not isinstance(instance.get("prompt"), str) or not instance["prompt"].strip():
        return "instances[0].prompt: a text prompt is required."
    video = instance.get("video")
    if video is not None and not (isinstance(video, dict) and isinstance(video.get("uri"), str)):
        return "instances[0].video: a uri is required."
    image = instance.get("image")
    if image is not None and not (
        isinstance(image, dict)
        and isinstance(image.get("bytesBase64Encoded"), str)
        and isinstance(image.get("mimeType"), str)
    ):
        return "instances[0].image: bytesBase64Encoded and mimeType are required."
    parameters = body.get("parameters", {})
    if not isinstance(parameters, dict):
        return "parameters: an object is required."
    if parameters.get("aspectRatio", "16:9") not in ("16:9", "9:16"):
        return "parameters.aspectRatio: 16:9 or 9:16."
    duration = parameters.get("durationSeconds", 8)
    if isinstance(duration, bool) or not isinstance(duration, int) or not 4 <= duration <= 8:
        return "parameters.durationSeconds: a number of seconds from 4 to 8."
    return None


def _error(
    status: int,
    word: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    error: dict[str, Any] = {"code": status, "message": message, "status": word}
    if details:
        error["details"] = details
    return JSONResponse({"error": error}, status_code=status, headers=headers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake Gemini API (Veo) for benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--min-s", type=float, default=10.0, help="shortest job duration")
    parser.add_argument("--max-s", type=float, default=60.0, help="longest job duration")
    parser.add_argument("--keys", default="", help="accepted keys, comma-separated (any if empty)")
    arguments = parser.parse_args(argv)
    keys = {key for key in arguments.keys.split(",") if key} or None
    fake = FakeGeminiUpstream(
        keys, random_duration_s=(arguments.min_s, arguments.max_s), record_requests=False
    )
    uvicorn.run(
        fake.app, host=arguments.host, port=arguments.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
