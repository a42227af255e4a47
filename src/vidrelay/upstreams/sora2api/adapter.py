"""The `sora2api` adapter: the calls, characters, content retrieval and the probe (see the
package's docstring for the protocol)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import structlog

from vidrelay.domain.channels import CREATE_ONLY
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
from vidrelay.upstreams.http import UnexpectedContent, UpstreamHttp, looks_like_video
from vidrelay.upstreams.messages import key_hint
from vidrelay.upstreams.sora2api.errors import (
    CODE_FOR_KIND,
    UPSTREAM_IDS,
    error_detail,
    is_transient,
)
from vidrelay.upstreams.sora2api.request import chat_body, sora2api_model
from vidrelay.upstreams.sora2api.stream import StreamJob, sse_data

log = structlog.get_logger(__name__)

_AVATAR_CREATE_MODEL = "avatar-create"
_POLL_AFTER_S = 2.0
_FIRST_EVENT_WAIT_S = 5.0
"""How long `submit` waits for the stream's first event: sora2api picks an account before it
says anything, so "no available tokens" arrives at once, as the first event of a 200 stream."""
_CHARACTER_DOWNLOAD_TIMEOUT_S = 60.0
_CHARACTER_VIDEO_MAX_BYTES = 20 * 1024 * 1024
_VIDEO_MODEL_NAME = re.compile(r"-(?:landscape|portrait)-\d+s$")
_UNSPECIFIED_HOSTS = frozenset({"0.0.0.0", "::"})
_LOOPBACK_HOSTS = frozenset({"localhost", "::1"})


class Sora2ApiUpstream:
    """One sora2api channel. `outbound_allowlist` is the SSRF guard's, for `character_url`."""

    operations = CREATE_ONLY
    """No remix, extension, edit or character on this protocol."""

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
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`answer_timeout_s` bounds the wait for a submit's response headers; `timeout_s` is
        the longest silence allowed inside a running stream."""
        self.name = name
        self.cost_per_second_micros = cost_per_second_micros
        self._outbound_allowlist = tuple(outbound_allowlist)
        self._answer_timeout_s = answer_timeout_s
        self._jobs: dict[str, StreamJob] = {}
        # The read timeout is the longest silence allowed inside a stream: sora2api says
        # nothing while it waits for a character to be processed (up to 10 min). Every running
        # job holds a connection, so the pool has no cap.
        self._http = UpstreamHttp(
            base_url,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=20),
            transport=transport,
        )
        self._base_url = self._http.base_url

    async def submit(self, request: UpstreamRequest, key: str) -> str:
        """Open the generation stream and hand it to a task; errors at the start raise here."""
        model = sora2api_model(request)
        prompt = request.request.prompt
        if request.request.character_url:
            username = await self._create_character(request.request.character_url, model, key)
            prompt = f"@{username} {prompt}"
        response = await self._open_stream(chat_body(model, prompt, request.reference_image), key)
        upstream_job_id = f"s2a_{secrets.token_hex(12)}"
        job = StreamJob(key=key)
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
            if is_transient(failure):
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
        try:
            response = await self._http.download(url, destination, key, looks_like_video)
        except UnexpectedContent:
            raise UpstreamError(
                "The upstream's video URL answered with something that is not a video.",
                code="content_unavailable",
                kind=FailureKind.CONTENT_UNAVAILABLE,
            ) from None
        if response is not None:
            raise self._content_status_error(response.status_code, url)
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
        await self._http.close()

    async def _open_stream(self, body: dict[str, Any], key: str) -> httpx.Response:
        """Send a chat completion and wait for its status; the body is left to the caller."""
        url = self._http.url("/v1/chat/completions")
        request = self._http.client.build_request(
            "POST",
            url,
            json=body,
            headers={**self._http.headers_for(url, key), "accept": "text/event-stream"},
        )
        try:
            response = await asyncio.wait_for(
                self._http.client.send(request, stream=True), self._answer_timeout_s
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

    async def _consume(self, job: StreamJob, response: httpx.Response) -> None:
        try:
            async for payload in sse_data(response):
                job.feed(payload)
                if job.done:
                    break
        except (httpx.HTTPError, httpx.StreamError) as error:
            job.broken = f"its stream broke off ({type(error).__name__})"
        finally:
            job.finished = True
            job.first_event.set()
            await response.aclose()

    def _refusal_at_start(self, job: StreamJob) -> UpstreamError | None:
        """An answer that ends the job before it began: raised from `submit` with its kind."""
        if job.error is not None and job.error_was_first_event:
            transient = is_transient(job.error)
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
        job = StreamJob(key=key)
        await self._consume(job, await self._open_stream(body, key))
        failure = job.failure()
        if failure is not None:
            transient = is_transient(failure)
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
        url = self._http.url("/v1/models")
        try:
            return await self._http.client.get(url, headers=self._http.headers_for(url, key))
        except httpx.HTTPError as error:
            raise _unreachable(error) from None

    async def _status_error(self, response: httpx.Response, key: str) -> UpstreamError:
        status = response.status_code
        kind = failure_kind_for_status(status)
        raw_detail = await error_detail(response)
        detail = self._clean(raw_detail, key) if raw_detail.strip() else ""
        return UpstreamError(
            f"The upstream answered HTTP {status}" + (f": {detail}" if detail else "."),
            code=CODE_FOR_KIND.get(kind, "upstream_error"),
            kind=kind,
            retry_after_s=retry_after_s(response.headers.get("retry-after"))
            if status == 429
            else None,
        )

    def _content_status_error(self, status: int, url: httpx.URL) -> UpstreamError:
        """404/410, other 4xx, and a foreign host refusing us (an expired signed URL) all mean
        "no video to be had now"; a 5xx, a 429 or our own host refusing the key keep their kind."""
        kind = failure_kind_for_status(status)
        foreign_refusal = kind is FailureKind.AUTH and not self._http.same_origin(url)
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
        base_host = self._http.base.host
        base_loopback = base_host in _LOOPBACK_HOSTS or base_host.startswith("127.")
        if host in _UNSPECIFIED_HOSTS or (loopback and not base_loopback):
            return httpx.URL(self._base_url + url.raw_path.decode("ascii"))
        return url

    def _clean(self, text: str, key: str) -> str:
        return self._http.clean(UPSTREAM_IDS.sub("[redacted]", text), key=key)


def _model_ids(response: httpx.Response) -> list[str]:
    try:
        data = response.json().get("data")
    except (json.JSONDecodeError, AttributeError):
        return []
    if not isinstance(data, list):
        return []
    return [str(item["id"]) for item in data if isinstance(item, dict) and "id" in item]


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
