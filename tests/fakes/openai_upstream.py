"""A fake upstream that speaks the OpenAI Videos API (`/v1/videos`) over real HTTP.

In tests::

    fake = FakeOpenAIUpstream(keys={"sk-up-test-0001"})
    with fake.serve():                      # the API on fake.url, a "CDN" on fake.cdn_url
        fake.submit_429s = 2                # fault modes are plain attributes
        ...                                 # fake.requests records every request

As a process, for the benchmark::

    python -m tests.fakes.openai_upstream --port P --min-s 10 --max-s 60 [--keys k1,k2]

Each job finishes after a random duration in [min, max] seconds; `GET /_stats` reports when
each job completed upstream and how many requests named it. A job's state is computed from
its timestamps (no task or sleep per job), so thousands of jobs in flight cost nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tests.fakes.http_server import ThreadedServer
from tests.fakes.media import tagged_mp4, tiny_image, tiny_mp4

VOCABULARIES: dict[str, tuple[str, str, str, str]] = {
    # queued, running, completed, failed
    "openai": ("queued", "in_progress", "completed", "failed"),
    "relay": ("pending", "processing", "succeeded", "failed"),
    "task": ("NOT_START", "RUNNING", "SUCCESS", "FAILURE"),
}
DEFAULT_FAILURE = {
    "code": "moderation_blocked",
    "message": "The generated video was blocked by our content policy.",
}
_QUEUED_SHARE = 0.1  # the first tenth of a job's duration it is queued, then running


@dataclass(frozen=True)
class RecordedFile:
    filename: str | None
    content_type: str | None
    data: bytes


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
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, RecordedFile] = field(default_factory=dict)
    json: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class FakeJob:
    id: str
    model: str
    prompt: str
    seconds: str
    size: str
    created_at: float
    duration_s: float
    fails: bool
    requests: int = 1  # the submit
    key: str | None = None
    """The key that made it: like OpenAI, the fake knows a video only on that account."""
    remixed_from: str | None = None

    @property
    def completes_at(self) -> float:
        return self.created_at + self.duration_s


class _BrokenResponse(Response):
    """Content-Length says the whole body; half is sent, then the connection drops."""

    def __init__(self, body: bytes) -> None:
        super().__init__(body, media_type="video/mp4")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        half = self.body[: len(self.body) // 2]
        await send({"type": "http.response.body", "body": half, "more_body": True})
        # Returning mid-body makes the server drop the connection (and log one line about it).


class FakeOpenAIUpstream:
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
        self._stopping = False
        self.reset()
        self.app = Starlette(
            routes=[
                Route("/v1/videos", self._create, methods=["POST"]),
                Route("/v1/videos", self._list, methods=["GET"]),
                Route("/v1/videos/extensions", self._extend, methods=["POST"]),
                Route("/v1/videos/edits", self._edit, methods=["POST"]),
                Route("/v1/videos/characters", self._create_character, methods=["POST"]),
                Route("/v1/videos/characters/{character_id}", self._character, methods=["GET"]),
                Route("/v1/videos/{video_id}/remix", self._remix, methods=["POST"]),
                Route("/v1/videos/{video_id}", self._retrieve, methods=["GET"]),
                Route("/v1/videos/{video_id}/content", self._content, methods=["GET"]),
                Route("/v1/models", self._models, methods=["GET"]),
                Route("/cdn/{video_id}.mp4", self._cdn, methods=["GET"]),
                Route("/_stats", self._stats, methods=["GET"]),
            ]
        )

    def reset(self) -> None:
        """Forget jobs and requests; every fault mode back to "a well-behaved OpenAI"."""
        self.jobs: dict[str, FakeJob] = {}
        self.characters: dict[str, dict[str, Any]] = {}
        """Characters made here, with the key that made each (`key`) and their clip's size."""
        self.requests: list[RecordedRequest] = []
        self.total_requests = 0
        self.job_duration_s = 0.0
        """How long each job runs (unless `random_duration_s` was given)."""
        self.vocabulary = "openai"
        """A key of VOCABULARIES: `openai`, `relay` (pending/processing/succeeded) or `task`."""
        self.progress_style = "percent"
        """`percent` (int 0-100), `fraction` (0-1 float), `string` ("45%") or `omitted`."""
        self.seconds_as_int = False
        self.weird_status_s = 0.0
        """For this long after creation a job's status is `weird_state`."""
        self.fail_jobs = False
        """Jobs end `failed` with `failure_error` instead of completing."""
        self.fail_share = 0.0
        """Each new job ends `failed` with this probability (as with `fail_jobs`)."""
        self.content_per_prompt = False
        """Each job's video is `tagged_mp4(prompt)`: distinct bytes per job, still a valid MP4."""
        self.failure_error: object = DEFAULT_FAILURE
        self.submit_500s = 0
        self.submit_429s = 0
        self.retry_after = "3"
        """`Retry-After` sent with every 429."""
        self.submit_hang_s = 0.0
        """A submit answers only after this long (or when the client gives up)."""
        self.moderate_submits = False
        """Submits are refused 400 with a message naming the host, a job id and the key."""
        self.poll_429s = 0
        self.poll_after_ms: int | None = None
        """Sent as `openai-poll-after-ms` on status answers."""
        self.content_404s = 0
        self.video_url_only = False
        """Finished jobs name a `video_url` (on the CDN); `/content` is always 404."""
        self.redirect_content = False
        """`/content` answers 302 to the CDN, another origin."""
        self.cdn_links_expired = False
        """The CDN answers 403 with an XML page, as for a signed URL past its expiry."""
        self.offer_variants = True
        self.variant_refusal_status = 400
        self.ignore_variant_param = False
        """`/content?variant=…` sends the video, like relays that drop the parameter."""
        self.content_trickle_s = 0.0
        """The video body is spread over this long, in small chunks."""
        self.break_content = False
        """Content-Length says the whole video; half is sent, then the connection drops."""
        self.submit_raw_body: str | None = None
        """Submits answer 200 with this body as is (no job is made): JSON without an id, HTML."""
        self.content_is_html_page = False
        """`/content` answers 200 with an HTML page, as a misconfigured CDN or proxy does."""
        self.offer_models_list = True
        self.outage = False
        """Every API route answers 503, as an upstream that is down."""
        """False: `/v1/models` is 404, as on upstreams that serve only videos."""

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def cdn_port(self) -> int:
        return int(self.cdn_url.rsplit(":", 1)[1])

    @contextlib.contextmanager
    def serve(self) -> Iterator[FakeOpenAIUpstream]:
        """Run the API and, on another port (another origin), the CDN, in threads."""
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

    def status_of(self, job: FakeJob, now: float) -> str:
        queued, running, completed, failed = VOCABULARIES[self.vocabulary]
        elapsed = now - job.created_at
        if elapsed < self.weird_status_s:
            return "weird_state"
        if elapsed >= job.duration_s:
            return failed if job.fails else completed
        return queued if elapsed < job.duration_s * _QUEUED_SHARE else running

    # -- endpoints ------------------------------------------------------------------------

    async def _create(self, request: Request) -> Response:
        recorded = await self._record(request, with_form=True)
        key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        if self.submit_hang_s:
            await self._hang(request, self.submit_hang_s)
        if self.submit_500s > 0:
            self.submit_500s -= 1
            return _error(
                500, "The server had an error while processing your request.", "server_error"
            )
        if self.submit_429s > 0:
            self.submit_429s -= 1
            return _error(
                429,
                "Rate limit reached for requests.",
                "rate_limit_exceeded",
                headers={"retry-after": self.retry_after},
            )
        if self.submit_raw_body is not None:
            return Response(self.submit_raw_body, media_type="application/json")
        job_id = f"vid_up_{secrets.token_hex(12)}"
        if self.moderate_submits:
            host = request.headers.get("host", "")
            return _error(
                400,
                f"Request {job_id} on {host} with key {key} was blocked by moderation: the "
                f"prompt may violate our usage policies. See http://{host}/docs/moderation",
                "moderation_blocked",
            )
        form = recorded.form if recorded else await _form_fields(request)
        job = self._new_job(
            job_id,
            key,
            form.get("model", "sora-2"),
            form.get("prompt", ""),
            form.get("seconds", "4"),
            form.get("size", "720x1280"),
        )
        return JSONResponse(self._video_object(job, request, job.created_at))

    def _new_job(
        self,
        job_id: str,
        key: str | None,
        model: str,
        prompt: str,
        seconds: str,
        size: str,
        remixed_from: str | None = None,
    ) -> FakeJob:
        low, high = self.random_duration_s or (self.job_duration_s, self.job_duration_s)
        job = FakeJob(
            id=job_id,
            model=model,
            prompt=prompt,
            seconds=seconds,
            size=size,
            created_at=time.time(),
            duration_s=random.uniform(low, high),
            fails=self.fail_jobs or random.random() < self.fail_share,
            key=key,
            remixed_from=remixed_from,
        )
        self.jobs[job.id] = job
        return job

    async def _remix(self, request: Request) -> Response:
        """`POST /v1/videos/{id}/remix` (JSON `{"prompt"}`): only a completed video of this
        key's account."""
        recorded = await self._record(request, with_json=True)
        key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        source = self._owned_source(request.path_params["video_id"], key)
        if isinstance(source, Response):
            return source
        prompt = recorded.json.get("prompt", "") if recorded else ""
        job = self._new_job(
            f"vid_up_{secrets.token_hex(12)}",
            key,
            source.model,
            str(prompt),
            source.seconds,
            source.size,
            remixed_from=source.id,
        )
        return JSONResponse(self._video_object(job, request, job.created_at))

    async def _extend(self, request: Request) -> Response:
        return await self._derive(request, extension=True)

    async def _edit(self, request: Request) -> Response:
        return await self._derive(request, extension=False)

    async def _derive(self, request: Request, *, extension: bool) -> Response:
        """`/v1/videos/extensions` and `/v1/videos/edits` (multipart): the source as `video[id]`
        (this key's own) or as an uploaded `video` file."""
        recorded = await self._record(request, with_form=True)
        key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        form = recorded.form if recorded else {}
        model, seconds, size = "sora-2", "4", "720x1280"
        if "video[id]" in form:
            source = self._owned_source(form["video[id]"], key)
            if isinstance(source, Response):
                return source
            model, seconds, size = source.model, source.seconds, source.size
        elif recorded is None or "video" not in recorded.files:
            return _error(400, "video is required.", "missing_required_parameter")
        if extension:
            seconds = str(int(seconds) + int(form.get("seconds", "4")))
        job = self._new_job(
            f"vid_up_{secrets.token_hex(12)}", key, model, form.get("prompt", ""), seconds, size
        )
        return JSONResponse(self._video_object(job, request, job.created_at))

    def _owned_source(self, video_id: str, key: str | None) -> FakeJob | Response:
        job = self.jobs.get(video_id)
        if job is None or job.key != key:
            return _error(404, f"Video {video_id} not found.", "not_found")
        if time.time() < job.completes_at or job.fails:
            return _error(400, "The video is not completed.", "invalid_request")
        return job

    async def _create_character(self, request: Request) -> Response:
        recorded = await self._record(request, with_form=True)
        key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        if recorded is None or "video" not in recorded.files or not recorded.form.get("name"):
            return _error(400, "name and video are required.", "missing_required_parameter")
        character_id = f"char_up_{secrets.token_hex(8)}"
        self.characters[character_id] = {
            "id": character_id,
            "name": recorded.form["name"],
            "created_at": int(time.time()),
            "key": key,
            "clip_bytes": len(recorded.files["video"].data),
        }
        return JSONResponse(self._character_body(character_id))

    async def _character(self, request: Request) -> Response:
        await self._record(request)
        key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        found = self.characters.get(request.path_params["character_id"])
        if found is None or found["key"] != key:
            return _error(404, "Character not found.", "not_found")
        return JSONResponse(self._character_body(found["id"]))

    def _character_body(self, character_id: str) -> dict[str, Any]:
        found = self.characters[character_id]
        return {name: found[name] for name in ("id", "name", "created_at")}

    async def _list(self, request: Request) -> Response:
        await self._record(request)
        _key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        limit = int(request.query_params.get("limit", "20"))
        now = time.time()
        newest = list(self.jobs.values())[-limit:][::-1]
        data = [self._video_object(job, request, now) for job in newest]
        return JSONResponse({"object": "list", "data": data, "has_more": len(self.jobs) > limit})

    async def _retrieve(self, request: Request) -> Response:
        await self._record(request)
        _key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        job = self._job(request)
        if job is None:
            return _error(404, "Video not found.", "not_found")
        if self.poll_429s > 0:
            self.poll_429s -= 1
            return _error(
                429,
                "Rate limit reached.",
                "rate_limit_exceeded",
                headers={"retry-after": self.retry_after},
            )
        headers = {}
        if self.poll_after_ms is not None:
            headers["openai-poll-after-ms"] = str(self.poll_after_ms)
        return JSONResponse(self._video_object(job, request, time.time()), headers=headers)

    async def _content(self, request: Request) -> Response:
        await self._record(request)
        _key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        job = self._job(request)
        if job is None or time.time() < job.completes_at or job.fails:
            return _error(404, "Video content is not available.", "not_found")
        variant = request.query_params.get("variant", "video")
        if variant != "video" and not self.ignore_variant_param:
            if not self.offer_variants:
                return _error(self.variant_refusal_status, f"Invalid variant {variant!r}.", None)
            if variant == "thumbnail":
                return Response(tiny_image("WEBP"), media_type="image/webp")
            return Response(tiny_image("JPEG"), media_type="image/jpeg")
        if self.content_404s > 0:
            self.content_404s -= 1
            return _error(404, "Video content is not available yet.", "not_found")
        if self.video_url_only:
            return _error(404, "Not found.", "not_found")
        if self.content_is_html_page:
            return Response("<!DOCTYPE html><html>Gateway error</html>", media_type="text/html")
        if self.redirect_content:
            return RedirectResponse(f"{self.cdn_url}/cdn/{job.id}.mp4", status_code=302)
        return self._video_body(job)

    async def _cdn(self, request: Request) -> Response:
        await self._record(request)
        job = self._job(request)
        if job is None:
            return Response("<html><body>404 Not Found</body></html>", 404, media_type="text/html")
        if self.cdn_links_expired:
            return Response(
                "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
                403,
                media_type="application/xml",
            )
        return self._video_body(job)

    async def _models(self, request: Request) -> Response:
        await self._record(request)
        _key, refusal = self._authorise(request)
        if refusal is not None:
            return refusal
        if not self.offer_models_list:
            return _error(404, "Not found.", "not_found")
        models = [{"id": name, "object": "model", "owned_by": "system"} for name in ("sora-2",)]
        return JSONResponse({"object": "list", "data": models})

    async def _stats(self, request: Request) -> Response:
        now = time.time()
        jobs = {
            job.id: {
                "completed_at": job.completes_at if job.completes_at <= now else None,
                "requests": job.requests,
            }
            for job in self.jobs.values()
        }
        return JSONResponse({"jobs": jobs, "total_requests": self.total_requests})

    # -- helpers --------------------------------------------------------------------------

    def _video_object(self, job: FakeJob, request: Request, now: float) -> dict[str, Any]:
        status = self.status_of(job, now)
        finished = now >= job.completes_at and status != "weird_state"
        elapsed = max(0.0, now - job.created_at)
        percent = 100 if finished else min(99, int(100 * elapsed / max(job.duration_s, 1e-9)))
        body: dict[str, Any] = {
            "id": job.id,
            "object": "video",
            "model": job.model,
            "status": status,
            "created_at": int(job.created_at),
            "completed_at": int(job.completes_at) if finished else None,
            "expires_at": int(job.completes_at) + 86400 if finished else None,
            "seconds": int(job.seconds) if self.seconds_as_int else job.seconds,
            "size": job.size,
            "remixed_from_video_id": job.remixed_from,
            "error": self.failure_error if finished and job.fails else None,
        }
        if self.progress_style == "fraction":
            body["progress"] = round(percent / 100, 3)
        elif self.progress_style == "string":
            body["progress"] = f"{percent}%"
        elif self.progress_style == "percent":
            body["progress"] = percent
        if finished and not job.fails and self.video_url_only:
            body["video_url"] = (
                f"{self.cdn_url or str(request.base_url).rstrip('/')}/cdn/{job.id}.mp4"
            )
        return body

    def _video_body(self, job: FakeJob) -> Response:
        video = tagged_mp4(job.prompt) if self.content_per_prompt else tiny_mp4()
        if self.break_content:
            return _BrokenResponse(video)
        if self.content_trickle_s:
            return StreamingResponse(
                _trickle(video, self.content_trickle_s),
                media_type="video/mp4",
                headers={"content-length": str(len(video))},
            )
        return Response(video, media_type="video/mp4")

    def _job(self, request: Request) -> FakeJob | None:
        job = self.jobs.get(request.path_params["video_id"])
        if job is not None:
            job.requests += 1
        return job

    def _authorise(self, request: Request) -> tuple[str | None, Response | None]:
        key = _bearer(request)
        if self.outage:
            return key, _error(503, "The service is temporarily unavailable.", None)
        if key is None or (self.keys is not None and key not in self.keys):
            masked = f"{key[:3]}***{key[-4:]}" if key else "none"
            return key, _error(
                401,
                f"Incorrect API key provided: {masked}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_api_key",
            )
        return key, None

    async def _record(
        self, request: Request, with_form: bool = False, with_json: bool = False
    ) -> RecordedRequest | None:
        self.total_requests += 1
        if not self.record_requests:
            return None
        form: dict[str, str] = {}
        files: dict[str, RecordedFile] = {}
        body: dict[str, Any] = {}
        if with_json:
            with contextlib.suppress(ValueError):
                parsed_json = await request.json()
                body = parsed_json if isinstance(parsed_json, dict) else {}
        if with_form:
            async with request.form() as parsed:
                for name, value in parsed.multi_items():
                    if isinstance(value, UploadFile):
                        data = await value.read()
                        files[name] = RecordedFile(value.filename, value.content_type, data)
                    else:
                        form[name] = value
        recorded = RecordedRequest(
            method=request.method,
            path=request.url.path,
            query=dict(request.query_params),
            headers={name.lower(): value for name, value in request.headers.items()},
            key=_bearer(request),
            port=int(request.scope["server"][1]),
            form=form,
            files=files,
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


async def _form_fields(request: Request) -> dict[str, str]:
    async with request.form() as parsed:
        return {name: value for name, value in parsed.multi_items() if isinstance(value, str)}


async def _trickle(body: bytes, seconds: float, chunks: int = 10) -> AsyncIterator[bytes]:
    size = -(-len(body) // chunks)
    for start in range(0, len(body), size):
        yield body[start : start + size]
        await asyncio.sleep(seconds / chunks)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    return key.strip() if scheme.lower() == "bearer" and key.strip() else None


def _error(
    status: int, message: str, code: str | None, headers: dict[str, str] | None = None
) -> JSONResponse:
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake OpenAI Videos upstream for benchmarks.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--min-s", type=float, default=10.0, help="shortest job duration")
    parser.add_argument("--max-s", type=float, default=60.0, help="longest job duration")
    parser.add_argument("--keys", default="", help="accepted keys, comma-separated (any if empty)")
    arguments = parser.parse_args(argv)
    keys = {key for key in arguments.keys.split(",") if key} or None
    fake = FakeOpenAIUpstream(
        keys, random_duration_s=(arguments.min_s, arguments.max_s), record_requests=False
    )
    uvicorn.run(
        fake.app, host=arguments.host, port=arguments.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
