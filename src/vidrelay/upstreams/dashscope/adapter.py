"""The `dashscope` adapter: the calls, content retrieval and the probe (see the package's
docstring for the protocol)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from vidrelay.domain.channels import CREATE_ONLY
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
from vidrelay.upstreams.dashscope.errors import (
    BALANCE_EXHAUSTED,
    UPSTREAM_ID,
    error_details,
    error_meaning,
    failure_code,
)
from vidrelay.upstreams.dashscope.request import map_request
from vidrelay.upstreams.dashscope.status import (
    CANCELED,
    UNKNOWN_TASK,
    progress_for_status,
    state_for_status,
    status_word,
    task_id,
    video_url,
)
from vidrelay.upstreams.http import (
    UnexpectedContent,
    channel_http,
    json_object,
    looks_like_video,
    required_json_object,
)
from vidrelay.upstreams.messages import key_hint

SUBMIT_PATH = "/api/v1/services/aigc/video-generation/video-synthesis"
TASK_PATH = "/api/v1/tasks/"
PROBE_TASK_ID = "00000000-0000-4000-8000-000000000000"
"""A task id no task has: looking it up bills nothing and shows whether the key is taken."""
UNKNOWN_GRACE_S = 15.0
"""A task this adapter submitted that long ago at most may not be visible yet: `UNKNOWN`
then means "not yet", not "lost"."""


class DashScopeUpstream:
    """One channel of Alibaba Cloud Model Studio (DashScope); `base_url` is the API root
    (`https://dashscope-intl.aliyuncs.com`, a workspace domain, …), with or without `/api/v1`.

    Holds one connection pool, the video URLs that task answers named and when this process
    submitted each task (both until `release`).
    """

    operations = CREATE_ONLY
    """No remix, extension, edit or character on this protocol."""

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        cost_per_second_micros: int = 0,
        timeout_s: float = 60.0,
        max_connections: int = 64,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.name = name
        self.cost_per_second_micros = cost_per_second_micros
        # The SDK's base URL ends in `/api/v1`; operators paste either spelling.
        self._http = channel_http(
            base_url.rstrip("/").removesuffix("/api/v1"),
            timeout_s=timeout_s,
            max_connections=max_connections,
            transport=transport,
        )
        self._video_urls: dict[str, str] = {}
        self._submitted_at: dict[str, float] = {}

    async def submit(self, request: UpstreamRequest, key: str) -> str:
        body = map_request(request)
        response = await self._http.send(
            "POST",
            self._http.url(SUBMIT_PATH),
            key,
            json=body,
            headers={"X-DashScope-Async": "enable"},
        )
        if not response.is_success:
            raise self._error(response, key)
        answer = required_json_object(response)
        upstream_job_id = task_id(answer)
        if upstream_job_id is None:
            if error_details(answer)[0]:  # an error told in a 200
                raise self._error(response, key)
            raise UpstreamError(
                "The upstream accepted the request but returned no task id.",
                code="upstream_bad_response",
                kind=FailureKind.UNAVAILABLE,
            )
        self._submitted_at[upstream_job_id] = time.monotonic()
        return upstream_job_id

    async def poll(self, upstream_job_id: str, key: str) -> UpstreamStatus:
        body = await self._task(upstream_job_id, key)
        word = status_word(body)
        if word == UNKNOWN_TASK:
            if self._just_submitted(upstream_job_id):
                return UpstreamStatus(UpstreamState.RUNNING, progress_for_status("pending"))
            raise UpstreamJobLost("The upstream no longer knows the task (expired or never made).")
        state = state_for_status(word)
        if state is UpstreamState.FAILED:
            code, message = error_details(body)
            if message is None:
                message = (
                    "The upstream canceled the task."
                    if word in CANCELED
                    else "The upstream failed to generate the video."
                )
            return UpstreamStatus(
                state,
                error_code=failure_code(code),
                error_message=self._clean(message, key, upstream_job_id),
            )
        return UpstreamStatus(state, progress_for_status(word))

    async def fetch_content(
        self, upstream_job_id: str, variant: str, destination: Path, key: str
    ) -> bool:
        """The video from the URL the task named; previews are not offered (the engine derives
        them). The URL expires: when it fails, the task is looked up once for a fresh one."""
        if variant != "video":
            return False
        known = self._video_urls.get(upstream_job_id)
        if known and await self._save_video(known, destination, key, upstream_job_id):
            return True
        fresh = await self._fresh_video_url(upstream_job_id, key)
        if (
            fresh
            and fresh != known
            and await self._save_video(fresh, destination, key, upstream_job_id)
        ):
            return True
        raise UpstreamError(
            "The upstream has no video for this job (yet).",
            code="content_unavailable",
            kind=FailureKind.CONTENT_UNAVAILABLE,
        )

    async def release(self, upstream_job_id: str) -> None:
        self._video_urls.pop(upstream_job_id, None)
        self._submitted_at.pop(upstream_job_id, None)

    async def probe(self, key: str) -> KeyProbe:
        """Look up a task id that cannot exist: an answer about the task (UNKNOWN, or a 4xx
        that is no refusal) means the API is reached and the key accepted; nothing is billed."""
        response = await self._http.send("GET", self._task_url(PROBE_TASK_ID), key)
        looked_up = "looked up a task id that cannot exist"
        if response.is_success:
            return KeyProbe(key_hint(key), True, f"{looked_up}: the key was accepted")
        error = self._error(response, key)
        status = response.status_code
        if error.kind is FailureKind.AUTH:
            refusal = (
                "the account's balance is exhausted"
                if error.code == BALANCE_EXHAUSTED
                else "the key was refused"
            )
            return KeyProbe(key_hint(key), False, f"{looked_up}: {refusal} ({status})")
        if status in (400, 404) and error.kind is FailureKind.REJECTED:
            return KeyProbe(key_hint(key), True, f"{looked_up}: the key was accepted ({status})")
        return KeyProbe(key_hint(key), False, f"{looked_up}: {error.message}")

    async def close(self) -> None:
        await self._http.close()

    # -- requests -------------------------------------------------------------------------

    def _task_url(self, upstream_job_id: str) -> str:
        return self._http.url(TASK_PATH + quote(upstream_job_id, safe=""))

    async def _task(self, upstream_job_id: str, key: str) -> dict[str, Any]:
        response = await self._http.send("GET", self._task_url(upstream_job_id), key)
        if response.status_code == 404 and not error_details(json_object(response))[0]:
            raise UpstreamJobLost("The upstream no longer knows the task.")
        if not response.is_success:
            raise self._error(response, key, upstream_job_id)
        body = required_json_object(response)
        url = video_url(body)
        if url:
            self._video_urls[upstream_job_id] = url
        return body

    def _just_submitted(self, upstream_job_id: str) -> bool:
        submitted = self._submitted_at.get(upstream_job_id)
        return submitted is not None and time.monotonic() - submitted < UNKNOWN_GRACE_S

    # -- content --------------------------------------------------------------------------

    async def _fresh_video_url(self, upstream_job_id: str, key: str) -> str | None:
        """The URL a new look at the task names; None when the task names none (any more)."""
        try:
            body = await self._task(upstream_job_id, key)
        except UpstreamJobLost:
            return None
        if status_word(body) == UNKNOWN_TASK:  # expired: its video is gone with it
            return None
        return video_url(body)

    async def _save_video(
        self, url: str, destination: Path, key: str, upstream_job_id: str
    ) -> bool:
        """True once saved; False for a 4xx (not there yet, or the link expired) or a body that
        is not a video; other failures raise (a 5xx is UNAVAILABLE, a 429 RATE_LIMITED)."""
        try:
            response = await self._http.download(url, destination, key, looks_like_video)
        except UnexpectedContent:
            return False
        if response is None:
            return True
        kind = failure_kind_for_status(response.status_code)
        if kind in (FailureKind.REJECTED, FailureKind.AUTH):
            return False
        raise self._http.error(response, kind=kind, hide=[upstream_job_id], key=key)

    # -- errors ---------------------------------------------------------------------------

    def _error(
        self, response: httpx.Response, key: str, upstream_job_id: str | None = None
    ) -> UpstreamError:
        """An error answer as an `UpstreamError`, its kind read from the body's code."""
        code, message = error_details(json_object(response))
        kind, our_code = error_meaning(code, message, response.status_code)
        if code is None and response.status_code in (404, 405):
            # No such path on this channel (a wrong base URL): another channel may serve.
            kind, our_code = FailureKind.UNAVAILABLE, "upstream_unavailable"
        return self._http.error(
            response,
            message=self._clean(message, key, upstream_job_id) if message else None,
            code=our_code,
            kind=kind,
        )

    def _clean(self, message: str, key: str, upstream_job_id: str | None = None) -> str:
        cleaned = self._http.clean(message, [upstream_job_id or ""], key=key)
        return UPSTREAM_ID.sub("[redacted]", cleaned)
