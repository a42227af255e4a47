"""The `sora2api` adapter: gateways of the sora2api family, where a video is one streamed chat.

sora2api (TheSmallHanCat/sora2api) serves Sora as OpenAI chat completions. A video is made by
`POST /v1/chat/completions` with `stream: true` (`stream: false` only checks availability); the
whole generation then runs inside that one response, an SSE stream of `chat.completion.chunk`s:
progress as text in `choices[0].delta.reasoning_content` ("**Video Generation Progress**: 42%"),
the result as `choices[0].delta.content` = "```html\\n<video src='URL' controls></video>\\n```",
a draft refused by moderation as content "❌ 生成失败: reason", an exception as a
`data: {"error": {"message": ...}}` line, and `data: [DONE]` last.

There is no job id to look up later: the open stream *is* the job. So `submit` opens it, checks
the status, and hands it to an in-process task under a synthetic id; a stream that breaks, or an
id this process does not hold (it restarted), is a lost job, submitted again by the engine.

Characters (`character_url`) take two streams, as sora2api creates them: first the video alone
(`video_url` content item, no text) with the `avatar-create` model where the upstream lists one
(newer releases refuse a video on a video model) or else with the video model itself (older
releases create the character when the text is missing); its answer names the character
(content "…角色名@username", "character name @username"); then the generation, whose prompt
starts with `@username`.
The video is downloaded here, through the SSRF guard, and sent as a `data:` URI, so the upstream
never fetches a user-given URL from its own network. sora2api always samples the character from
the video's first 3 s ("0,3") and has no parameter for it, so `character_timestamps` is ignored.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import structlog

from vidrelay.media.reference_images import image_content_type
from vidrelay.outbound import OutboundError, OutboundRefused, guarded_request
from vidrelay.retry_after import retry_after_s
from vidrelay.upstreams.base import (
    FailureKind,
    KeyProbe,
    UpstreamError,
    UpstreamJobLost,
    UpstreamRequest,
    UpstreamState,
    UpstreamStatus,
    failure_kind_for_status,
)
from vidrelay.upstreams.messages import clean_upstream_message, key_hint

__all__ = ["SORA2API_VIDEO_MODELS", "Sora2ApiUpstream", "sora2api_model"]

log = structlog.get_logger(__name__)

_FAMILY_SECONDS: dict[str, tuple[int, ...]] = {
    "sora2": (10, 15, 25),
    "sora2pro": (10, 15, 25),
    "sora2pro-hd": (10, 15),
}
SORA2API_VIDEO_MODELS: frozenset[str] = frozenset(
    f"{family}-{orientation}-{seconds}s"
    for family, lengths in _FAMILY_SECONDS.items()
    for orientation in ("landscape", "portrait")
    for seconds in lengths
)
"""The video models of sora2api's MODEL_CONFIG: `{family}-{orientation}-{seconds}s`."""

_FAMILY_OF_MODEL = {
    "sora-2": "sora2",
    "sora2": "sora2",
    "sora-2-pro": "sora2pro",
    "sora2pro": "sora2pro",
    "sora2pro-hd": "sora2pro-hd",
}
_HIGH_SIZES = frozenset({"1792x1024", "1024x1792"})
_AVATAR_CREATE_MODEL = "avatar-create"

_POLL_AFTER_S = 2.0
_FIRST_EVENT_WAIT_S = 5.0
"""How long `submit` waits for the stream's first event: sora2api picks an account before it
says anything, so "no available tokens" arrives at once, as the first event of a 200 stream."""
_CHARACTER_DOWNLOAD_TIMEOUT_S = 60.0
_CHARACTER_VIDEO_MAX_BYTES = 20 * 1024 * 1024
_ERROR_BODY_MAX_BYTES = 64 * 1024
_CONTENT_MAX_CHARS = 64 * 1024

_TRANSIENT_ERROR = re.compile(
    r"no available|concurrency|heavy[ _]load|overload|time ?out|timed out|cloudflare|cf_shield"
    r"|\b429\b|rate limit|too many requests|\b401\b|unauthori[sz]ed|token_invalidated"
    r"|temporar|\b50[234]\b",
    re.IGNORECASE,
)
"""Errors that say nothing about the request: the upstream's accounts are busy, blocked or
expired. Another attempt (later or on another channel) can succeed, so they never fail a job."""
_UPSTREAM_IDS = re.compile(
    r"\b(?:task|gen|cameo|ch|media|file|post)_[A-Za-z0-9]{6,}\b|\bs_[0-9a-f]{32}\b"
)
_VIDEO_MODEL_NAME = re.compile(r"-(?:landscape|portrait)-\d+s$")
_PROGRESS = re.compile(r"(\d{1,3})(?:\.\d+)?\s*%")
_VIDEO_URL_PATTERNS = (
    re.compile(r"<video\b[^>]*?\bsrc\s*=\s*[\"']([^\"']+)[\"']", re.IGNORECASE),
    re.compile(r"\]\(([^)\s]+)\)"),
    re.compile(r"(https?://[^\s\"'<>)\]]+)"),
    re.compile(r"(?<![\w/])(/tmp/[^\s\"'<>)\]]+)"),
)
_CHARACTER_IN_CONTENT = re.compile(r"@([A-Za-z0-9_][A-Za-z0-9_.]*)")
_CHARACTER_IN_REASONING = re.compile(r"\(@([A-Za-z0-9_][A-Za-z0-9_.]*)\)")
_FAILURE_MARK = "❌"
_UNSPECIFIED_HOSTS = frozenset({"0.0.0.0", "::"})
_LOOPBACK_HOSTS = frozenset({"localhost", "::1"})
_CODE_FOR_KIND = {
    FailureKind.AUTH: "upstream_auth_failed",
    FailureKind.RATE_LIMITED: "upstream_rate_limited",
    FailureKind.UNAVAILABLE: "upstream_unavailable",
    FailureKind.REJECTED: "upstream_rejected",
}


def sora2api_model(request: UpstreamRequest) -> str:
    """The sora2api model for a request: family, orientation and length are all in the name.

    An `upstream_model` that already names an orientation is the operator's choice and is used
    as it is; otherwise it (or the public model) is the family, and `sora-2-pro` at a high size
    becomes `sora2pro-hd`. A combination sora2api lacks is refused here, before any call.
    """
    explicit = request.upstream_model.strip()
    if "landscape" in explicit or "portrait" in explicit:
        return explicit
    public = request.request
    base = explicit or public.model
    family = _FAMILY_OF_MODEL.get(base)
    if family is None:
        raise _rejected(f"The model {base!r} has no equivalent on this upstream.")
    if public.size in _HIGH_SIZES:
        if family == "sora2":
            raise _rejected(
                f"size {public.size} needs sora-2-pro on this upstream; "
                "sora-2 is offered at 1280x720 and 720x1280."
            )
        family = "sora2pro-hd"
    orientation = "landscape" if public.width > public.height else "portrait"
    name = f"{family}-{orientation}-{public.seconds}s"
    if name not in SORA2API_VIDEO_MODELS:
        offered = ", ".join(str(seconds) for seconds in _FAMILY_SECONDS[family])
        raise _rejected(
            f"seconds {public.seconds!r} is not offered for {public.model} at {public.size} "
            f"on this upstream; allowed values: {offered}."
        )
    return name


def _rejected(message: str) -> UpstreamError:
    return UpstreamError(message, code="unsupported_by_upstream", kind=FailureKind.REJECTED)


@dataclass
class _StreamJob:
    """What one sora2api stream has said so far. Owned by one task; read by `poll`."""

    key: str
    progress: int | None = None
    content: str = ""
    video_url: str | None = None
    error: str | None = None
    error_was_first_event: bool = False
    character_name: str | None = None
    events: int = 0
    done: bool = False
    broken: str | None = None
    finished: bool = False
    first_event: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    def feed(self, payload: str) -> None:
        """Take one SSE `data:` payload."""
        self.events += 1
        self.first_event.set()
        if payload.startswith("[DONE]"):  # also `[DONE]\n\n` with literal backslashes (CF path)
            self.done = True
            return
        try:
            chunk = json.loads(payload)
        except json.JSONDecodeError:
            return  # not ours to judge: keep-alives, comments
        if not isinstance(chunk, dict):
            return
        if "error" in chunk:
            self._take_error(chunk["error"])
            return
        delta = _first_delta(chunk)
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str):
            self._take_reasoning(reasoning)
        content = delta.get("content")
        if isinstance(content, str) and content:
            self.content = (self.content + content)[-_CONTENT_MAX_CHARS:]
            if self.video_url is None:
                self.video_url = _video_url_in(self.content)

    def _take_error(self, error: object) -> None:
        if self.error is not None:
            return
        message = error.get("message") if isinstance(error, dict) else error
        self.error = str(message or "the upstream reported an error without a message")
        self.error_was_first_event = self.events == 1

    def _take_reasoning(self, text: str) -> None:
        found = _PROGRESS.findall(text)
        if found:
            percent = min(int(found[-1]), 100)
            self.progress = max(self.progress or 0, percent)
        named = _CHARACTER_IN_REASONING.search(text)
        if named:
            self.character_name = named.group(1).rstrip(".")

    def failure(self) -> str | None:
        """The upstream's own reason for giving up, from an error object or a ❌ answer."""
        if self.error is not None:
            return self.error
        text = self.content.strip()
        if text.startswith(_FAILURE_MARK):
            reason = re.split(r"[:\uff1a]", text, maxsplit=1)[-1].strip()
            return reason if reason not in ("", "None") else "the content was refused"
        return None

    def character_in_answer(self) -> str | None:
        named = _CHARACTER_IN_CONTENT.search(self.content)
        if named:
            return named.group(1).rstrip(".")
        return self.character_name if self.done else None


def _first_delta(chunk: dict[str, Any]) -> dict[str, Any]:
    choices = chunk.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        delta = choices[0].get("delta") or choices[0].get("message")
        if isinstance(delta, dict):
            return delta
    return {}


def _video_url_in(content: str) -> str | None:
    for pattern in _VIDEO_URL_PATTERNS:
        found = pattern.search(content)
        if found and not found.group(1).startswith("data:"):
            return found.group(1)
    return None


def _is_transient(message: str) -> bool:
    return _TRANSIENT_ERROR.search(message) is not None


async def _sse_data(response: httpx.Response) -> AsyncIterator[str]:
    """The `data:` payloads of an SSE body, one per event (multi-line data joined)."""
    lines: list[str] = []
    async for line in response.aiter_lines():
        if not line:
            if lines:
                yield "\n".join(lines)
                lines = []
            continue
        name, _, value = line.partition(":")
        if name == "data":
            lines.append(value.removeprefix(" "))
    if lines:
        yield "\n".join(lines)


class Sora2ApiUpstream:
    """One sora2api channel. `outbound_allowlist` is the SSRF guard's, for `character_url`."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        cost_per_second_micros: int = 0,
        timeout_s: float = 1800.0,
        connect_timeout_s: float = 10.0,
        answer_timeout_s: float = 60.0,
        outbound_allowlist: Sequence[str] = (),
    ) -> None:
        """`answer_timeout_s` bounds the wait for a submit's response headers; `timeout_s` is
        the longest silence allowed inside a running stream."""
        self.name = name
        self.cost_per_second_micros = cost_per_second_micros
        self._base_url = base_url.rstrip("/")
        self._base = httpx.URL(self._base_url)
        self._hidden = (self._base_url, self._base.netloc.decode("ascii"), self._base.host)
        self._outbound_allowlist = tuple(outbound_allowlist)
        self._answer_timeout_s = answer_timeout_s
        self._jobs: dict[str, _StreamJob] = {}
        # The read timeout is the longest silence allowed inside a stream: sora2api says
        # nothing while it waits for a character to be processed (up to 10 min). Every running
        # job holds a connection, so the pool has no cap.
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=20),
        )

    async def submit(self, request: UpstreamRequest, key: str) -> str:
        """Open the generation stream and hand it to a task; errors at the start raise here."""
        model = sora2api_model(request)
        prompt = request.request.prompt
        if request.request.character_url:
            username = await self._create_character(request.request.character_url, model, key)
            prompt = f"@{username} {prompt}"
        response = await self._open_stream(_chat_body(model, prompt, request.reference_image), key)
        upstream_job_id = f"s2a_{secrets.token_hex(12)}"
        job = _StreamJob(key=key)
        self._jobs[upstream_job_id] = job
        job.task = asyncio.create_task(self._consume(job, response))
        job.task.add_done_callback(_log_unexpected_failure)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(job.first_event.wait(), _FIRST_EVENT_WAIT_S)
            refusal = self._refusal_at_start(job)
        except BaseException:
            await self.release(upstream_job_id)
            raise
        if refusal is not None:
            await self.release(upstream_job_id)
            raise refusal
        return upstream_job_id

    async def poll(self, upstream_job_id: str, key: str) -> UpstreamStatus:
        job = self._jobs.get(upstream_job_id)
        if job is None:
            raise UpstreamJobLost(
                "The upstream job is gone: its stream lived in a process that has since stopped."
            )
        if job.video_url is not None:
            return UpstreamStatus(UpstreamState.COMPLETED, 100)
        failure = job.failure()
        if failure is not None:
            if _is_transient(failure):
                await self.release(upstream_job_id)
                raise UpstreamJobLost(
                    f"The upstream gave up on the job: {self._clean(failure, job.key)}"
                )
            return UpstreamStatus(
                UpstreamState.FAILED,
                error_code="upstream_rejected",
                error_message=f"The upstream refused to generate the video: "
                f"{self._clean(failure, job.key)}",
            )
        if job.finished:
            reason = job.broken or "the upstream ended its stream without a video"
            log.info("sora2api_stream_lost", upstream=self.name, reason=reason)
            await self.release(upstream_job_id)
            raise UpstreamJobLost(f"The upstream lost the job: {reason}.")
        progress = None if job.progress is None else min(job.progress, 99)
        return UpstreamStatus(UpstreamState.RUNNING, progress, poll_after_s=_POLL_AFTER_S)

    async def fetch_content(
        self, upstream_job_id: str, variant: str, destination: Path, key: str
    ) -> bool:
        """Stream the finished video into `destination`; sora2api makes no previews."""
        if variant != "video":
            return False
        job = self._jobs.get(upstream_job_id)
        if job is None:
            raise UpstreamJobLost()
        if job.video_url is None:
            raise UpstreamError(
                "The upstream has no video for this job yet.",
                code="content_not_ready",
                kind=FailureKind.CONTENT_UNAVAILABLE,
            )
        url = self._video_location(job.video_url)
        headers = self._auth(key) if _origin(url) == _origin(self._base) else {}
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(f".{destination.name}.{secrets.token_hex(4)}.part")
        try:
            async with self._client.stream(
                "GET", url, headers=headers, follow_redirects=True
            ) as response:
                if response.status_code != 200:
                    raise self._content_status_error(response.status_code, url)
                async with await anyio.open_file(partial, "wb") as file:
                    async for chunk in response.aiter_bytes():
                        await file.write(chunk)
            await anyio.Path(partial).replace(destination)
        except (httpx.HTTPError, httpx.StreamError) as error:
            raise UpstreamError(
                f"The video download from the upstream broke off ({type(error).__name__}).",
                code="content_transfer_failed",
                kind=FailureKind.UNAVAILABLE,
            ) from None
        finally:
            await anyio.Path(partial).unlink(missing_ok=True)
        return True

    async def release(self, upstream_job_id: str) -> None:
        job = self._jobs.pop(upstream_job_id, None)
        if job is not None and job.task is not None and not job.task.done():
            job.task.cancel()
            await asyncio.wait([job.task])

    async def probe(self, key: str) -> KeyProbe:
        """List the models: free, authenticated, and it shows this really is sora2api."""
        response = await self._get_models(key)
        hint = key_hint(key)
        if response.status_code in (401, 403):
            return KeyProbe(hint, False, f"the key was refused (HTTP {response.status_code})")
        if response.status_code >= 500:
            raise UpstreamError(
                f"The upstream answered HTTP {response.status_code}.",
                code="upstream_unavailable",
                kind=FailureKind.UNAVAILABLE,
            )
        if response.status_code != 200:
            return KeyProbe(hint, False, f"unexpected answer HTTP {response.status_code}")
        video_models = [m for m in _model_ids(response) if _VIDEO_MODEL_NAME.search(m)]
        if not video_models:
            return KeyProbe(hint, False, "the key works but the upstream lists no video model")
        return KeyProbe(hint, True, f"key accepted; {len(video_models)} video models")

    async def close(self) -> None:
        for upstream_job_id in list(self._jobs):
            await self.release(upstream_job_id)
        await self._client.aclose()

    async def _open_stream(self, body: dict[str, Any], key: str) -> httpx.Response:
        """Send a chat completion and wait for its status; the body is left to the caller."""
        request = self._client.build_request(
            "POST",
            f"{self._base_url}/v1/chat/completions",
            json=body,
            headers={**self._auth(key), "accept": "text/event-stream"},
        )
        try:
            response = await asyncio.wait_for(
                self._client.send(request, stream=True), self._answer_timeout_s
            )
        except (httpx.TimeoutException, TimeoutError):
            raise UpstreamError(
                "The upstream did not answer in time.",
                code="upstream_timeout",
                kind=FailureKind.UNAVAILABLE,
            ) from None
        except httpx.HTTPError as error:
            raise _unreachable(error) from None
        if response.status_code != 200:
            try:
                raise await self._status_error(response, key)
            finally:
                await response.aclose()
        return response

    async def _consume(self, job: _StreamJob, response: httpx.Response) -> None:
        try:
            async for payload in _sse_data(response):
                job.feed(payload)
                if job.done:
                    break
        except (httpx.HTTPError, httpx.StreamError) as error:
            job.broken = f"its stream broke off ({type(error).__name__})"
        finally:
            job.finished = True
            job.first_event.set()
            await response.aclose()

    def _refusal_at_start(self, job: _StreamJob) -> UpstreamError | None:
        """An answer that ends the job before it began: raised from `submit` with its kind."""
        if job.error is not None and job.error_was_first_event:
            transient = _is_transient(job.error)
            return UpstreamError(
                f"The upstream refused the job: {self._clean(job.error, job.key)}",
                code="upstream_unavailable" if transient else "upstream_rejected",
                kind=FailureKind.UNAVAILABLE if transient else FailureKind.REJECTED,
            )
        if job.finished and job.events == 0:
            return UpstreamError(
                "The upstream closed the stream without answering.",
                code="upstream_unavailable",
                kind=FailureKind.UNAVAILABLE,
            )
        return None

    async def _create_character(self, character_url: str, video_model: str, key: str) -> str:
        """Run sora2api's character-only stream and return the character's username."""
        video = await self._download_character_video(character_url)
        model = await self._character_model(video_model, key)
        video_item = {
            "type": "video_url",
            "video_url": {"url": "data:video/mp4;base64," + base64.b64encode(video).decode()},
        }
        body = {
            "model": model,
            "messages": [{"role": "user", "content": [video_item]}],
            "stream": True,
        }
        job = _StreamJob(key=key)
        await self._consume(job, await self._open_stream(body, key))
        failure = job.failure()
        if failure is not None:
            transient = _is_transient(failure)
            raise UpstreamError(
                f"The upstream could not create the character: {self._clean(failure, key)}",
                code="upstream_unavailable" if transient else "character_rejected",
                kind=FailureKind.UNAVAILABLE if transient else FailureKind.REJECTED,
            )
        if job.broken is not None:
            raise UpstreamError(
                f"The upstream's character creation failed: {job.broken}.",
                code="upstream_unavailable",
                kind=FailureKind.UNAVAILABLE,
            )
        username = job.character_in_answer()
        if username is None:
            raise UpstreamError(
                "The upstream created no character from character_url.",
                code="character_rejected",
                kind=FailureKind.REJECTED,
            )
        return username

    async def _download_character_video(self, url: str) -> bytes:
        try:
            response = await guarded_request(
                "GET",
                url,
                allowlist=self._outbound_allowlist,
                timeout_s=_CHARACTER_DOWNLOAD_TIMEOUT_S,
                max_bytes=_CHARACTER_VIDEO_MAX_BYTES,
            )
        except OutboundRefused as refusal:
            raise _bad_character_url(f"character_url was refused: {refusal}.") from None
        except OutboundError as error:
            raise _bad_character_url(f"character_url could not be downloaded: {error}.") from None
        if response.status_code != 200 or not response.body:
            raise _bad_character_url(
                f"character_url answered HTTP {response.status_code}"
                + ("" if response.body else " with nothing")
                + "; it must serve the character's video."
            )
        return response.body

    async def _character_model(self, video_model: str, key: str) -> str:
        response = await self._get_models(key)
        if response.status_code != 200:
            raise await self._status_error(response, key)
        models = _model_ids(response)
        if _AVATAR_CREATE_MODEL in models:
            return _AVATAR_CREATE_MODEL
        variants = sorted(m for m in models if m.startswith(_AVATAR_CREATE_MODEL))
        return variants[0] if variants else video_model

    async def _get_models(self, key: str) -> httpx.Response:
        try:
            return await self._client.get(f"{self._base_url}/v1/models", headers=self._auth(key))
        except httpx.HTTPError as error:
            raise _unreachable(error) from None

    async def _status_error(self, response: httpx.Response, key: str) -> UpstreamError:
        status = response.status_code
        kind = failure_kind_for_status(status)
        raw_detail = await _error_detail(response)
        detail = self._clean(raw_detail, key) if raw_detail.strip() else ""
        return UpstreamError(
            f"The upstream answered HTTP {status}" + (f": {detail}" if detail else "."),
            code=_CODE_FOR_KIND.get(kind, "upstream_error"),
            kind=kind,
            retry_after_s=retry_after_s(response.headers.get("retry-after"))
            if status == 429
            else None,
        )

    def _content_status_error(self, status: int, url: httpx.URL) -> UpstreamError:
        """404/410, other 4xx, and a foreign host refusing us (an expired signed URL) all mean
        "no video to be had now"; a 5xx, a 429 or our own host refusing the key keep their kind."""
        kind = failure_kind_for_status(status)
        foreign_refusal = kind is FailureKind.AUTH and _origin(url) != _origin(self._base)
        if kind is FailureKind.REJECTED or foreign_refusal:
            kind = FailureKind.CONTENT_UNAVAILABLE
        return UpstreamError(
            f"The upstream's video answered HTTP {status}.",
            code="content_unavailable",
            kind=kind,
        )

    def _video_location(self, raw: str) -> httpx.URL:
        """Where to fetch the video. sora2api writes its own file-cache URLs as
        `http://{server_host}:{server_port}/tmp/…` unless `cache_base_url` is set; a relative,
        unspecified (0.0.0.0) or foreign-loopback host means "the upstream itself"."""
        if raw.startswith("/"):
            return httpx.URL(self._base_url + raw)
        url = httpx.URL(raw) if "://" in raw else httpx.URL(f"{self._base_url}/{raw}")
        host = url.host
        loopback = host in _LOOPBACK_HOSTS or host.startswith("127.")
        base_loopback = self._base.host in _LOOPBACK_HOSTS or self._base.host.startswith("127.")
        if host in _UNSPECIFIED_HOSTS or (loopback and not base_loopback):
            return httpx.URL(self._base_url + url.raw_path.decode("ascii"))
        return url

    def _auth(self, key: str) -> dict[str, str]:
        return {"authorization": f"Bearer {key}"}

    def _clean(self, text: str, key: str) -> str:
        return clean_upstream_message(_UPSTREAM_IDS.sub("[redacted]", text), (key, *self._hidden))


def _chat_body(model: str, prompt: str, reference_image: bytes | None) -> dict[str, Any]:
    """sora2api reads the last message: a `text` item is the prompt, an `image_url` item whose
    URL starts with `data:image` is the image for image-to-video (a plain URL is ignored)."""
    content: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
    if reference_image is not None:
        encoded = base64.b64encode(reference_image).decode()
        data_uri = f"data:{image_content_type(reference_image)};base64,{encoded}"
        content.append({"type": "image_url", "image_url": {"url": data_uri}})
    return {"model": model, "messages": [{"role": "user", "content": content}], "stream": True}


def _model_ids(response: httpx.Response) -> list[str]:
    try:
        data = response.json().get("data")
    except (json.JSONDecodeError, AttributeError):
        return []
    if not isinstance(data, list):
        return []
    return [str(item["id"]) for item in data if isinstance(item, dict) and "id" in item]


async def _error_detail(response: httpx.Response) -> str:
    """The message of an error body (`{"error": {"message"}}` or FastAPI's `{"detail"}`)."""
    body = b""
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= _ERROR_BODY_MAX_BYTES:
                break
    except (httpx.HTTPError, httpx.StreamError):
        pass  # what arrived is enough for a message
    text = body[:_ERROR_BODY_MAX_BYTES].decode("utf-8", "replace")
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        return text.strip()[:300]
    if isinstance(parsed, dict):
        error = parsed.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for name in ("detail", "message", "error"):
            if isinstance(parsed.get(name), str):
                return str(parsed[name])
    return ""


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or {"http": 80, "https": 443}.get(url.scheme)


def _unreachable(error: httpx.HTTPError) -> UpstreamError:
    return UpstreamError(
        f"The upstream cannot be reached ({type(error).__name__}).",
        code="upstream_unreachable",
        kind=FailureKind.UNAVAILABLE,
    )


def _bad_character_url(message: str) -> UpstreamError:
    return UpstreamError(message, code="invalid_character_url", kind=FailureKind.REJECTED)


def _log_unexpected_failure(task: asyncio.Task[None]) -> None:
    """A stream reader that died of a bug: the job is then lost (see `poll`), never silent."""
    if not task.cancelled() and task.exception() is not None:
        log.error("sora2api_stream_reader_failed", error_type=type(task.exception()).__name__)
