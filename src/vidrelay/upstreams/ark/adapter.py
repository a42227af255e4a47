"""The `ark` adapter: the calls, content retrieval and the probe (see the package's docstring
for the protocol)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from vidrelay.domain.channels import CREATE_ONLY
from vidrelay.upstreams.ark.errors import (
    BALANCE_EXHAUSTED,
    MODERATION_BLOCKED,
    TASK_ID,
    classify,
    error_details,
    is_moderation,
)
from vidrelay.upstreams.ark.request import map_request
from vidrelay.upstreams.ark.status import (
    ENDED_WITHOUT_REASON,
    state_for_status,
    status_word,
    video_url,
)
from vidrelay.upstreams.base import (
    FailureKind,
    KeyProbe,
    UpstreamError,
    UpstreamJobLost,
    UpstreamRequest,
    UpstreamState,
    UpstreamStatus,
)
from vidrelay.upstreams.http import (
    UnexpectedContent,
    channel_http,
    json_object,
    looks_like_video,
    required_json_object,
)
from vidrelay.upstreams.messages import key_hint

TASKS_PATH = "/api/v3/contents/generations/tasks"
PROBE_TASK_ID = "cgt-00000000000000-vidrelayprobe"
"""A task id that cannot exist (Ark's ids carry their creation time): looking it up bills
nothing and answers 404 to an accepted key, 401 to a refused one."""


class ArkUpstream:
    """One channel of Volcengine Ark or BytePlus ModelArk; `base_url` is the API root
    (`https://ark.cn-beijing.volces.com`, `https://ark.ap-southeast.bytepluses.com`).

    Holds one connection pool and the video URL the last status of each finished task named
    (until `release`): Ark's URLs are signed and expire, so a fresh one is asked for whenever
    the remembered one fails.
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
        # Operators often paste the SDK's base URL (`…/api/v3`); both spellings mean the same.
        self._http = channel_http(
            base_url.rstrip("/").removesuffix("/api/v3"),
            timeout_s=timeout_s,
            max_connections=max_connections,
            transport=transport,
        )
        self._video_urls: dict[str, str] = {}

    async def submit(self, request: UpstreamRequest, key: str) -> str:
        body = map_request(request)
        response = await self._http.send("POST", self._http.url(TASKS_PATH), key, json=body)
        if not response.is_success:
            raise self._error(response, key)
        task_id = required_json_object(response).get("id")
        if not isinstance(task_id, str) or not task_id.strip():
            raise UpstreamError(
                "The upstream accepted the request but returned no task id.",
                code="upstream_bad_response",
                kind=FailureKind.UNAVAILABLE,
            )
        return task_id

    async def poll(self, upstream_job_id: str, key: str) -> UpstreamStatus:
        task = await self._get_task(upstream_job_id, key)
        state, progress = state_for_status(task.get("status"))
        if state is not UpstreamState.FAILED:
            return UpstreamStatus(state, progress)
        code, message = self._failure(task, key, upstream_job_id)
        return UpstreamStatus(state, progress, error_code=code, error_message=message)

    async def fetch_content(
        self, upstream_job_id: str, variant: str, destination: Path, key: str
    ) -> bool:
        """The video from the URL the task names; Ark offers no previews (the engine derives
        them). The remembered URL first; when it fails (expired, not there yet), the task is
        looked up once for a fresh one."""
        if variant != "video":
            return False
        known = self._video_urls.get(upstream_job_id)
        if known and await self._save_video(known, destination, key):
            return True
        fresh = await self._fresh_video_url(upstream_job_id, key)
        if fresh and fresh != known and await self._save_video(fresh, destination, key):
            return True
        raise UpstreamError(
            "The upstream has no video for this job (yet).",
            code="content_unavailable",
            kind=FailureKind.CONTENT_UNAVAILABLE,
        )

    async def release(self, upstream_job_id: str) -> None:
        self._video_urls.pop(upstream_job_id, None)

    async def probe(self, key: str) -> KeyProbe:
        """List one generation task (free, and it needs the key); where the list is not
        served, look up a task that cannot exist (404 then means the key was accepted)."""
        response = await self._http.send(
            "GET", self._http.url(TASKS_PATH), key, params={"page_num": "1", "page_size": "1"}
        )
        look_up = "listed generation tasks"
        accepted = response.is_success
        if response.status_code in (404, 405):
            response = await self._http.send("GET", self._task_url(PROBE_TASK_ID), key)
            look_up = "looked up a task id that cannot exist"
            # Ark's own 404 says why in JSON; a 404 page means no Ark API at this base URL.
            code = error_details(json_object(response))[0]
            accepted = response.status_code == 404 and code is not None
        if accepted:
            return KeyProbe(key_hint(key), True, f"the key was accepted ({look_up})")
        error = self._error(response, key)
        if error.code == BALANCE_EXHAUSTED:
            detail = f"the account's balance is exhausted ({response.status_code}; {look_up})"
        elif error.kind is FailureKind.AUTH:
            detail = f"the key was refused ({response.status_code}; {look_up})"
        else:
            detail = f"{error.message} ({look_up})"
        return KeyProbe(key_hint(key), False, detail)

    async def close(self) -> None:
        await self._http.close()

    # -- requests -------------------------------------------------------------------------

    def _task_url(self, task_id: str) -> str:
        return self._http.url(f"{TASKS_PATH}/{quote(task_id, safe='')}")

    async def _get_task(self, upstream_job_id: str, key: str) -> dict[str, Any]:
        response = await self._http.send("GET", self._task_url(upstream_job_id), key)
        if response.status_code == 404:
            raise UpstreamJobLost()
        if not response.is_success:
            raise self._error(response, key, upstream_job_id)
        task = required_json_object(response)
        url = video_url(task)
        if url:
            self._video_urls[upstream_job_id] = url
        return task

    def _failure(self, task: dict[str, Any], key: str, upstream_job_id: str) -> tuple[str, str]:
        """(code, message) of a task that ended without a video."""
        code, message = error_details(task)
        default_code, default_message = ENDED_WITHOUT_REASON.get(
            status_word(task), ("generation_failed", "The upstream failed to generate the video.")
        )
        our_code = MODERATION_BLOCKED if is_moderation(code) else default_code
        text = self._clean(message, key, upstream_job_id) if message else default_message
        return our_code, text

    # -- content --------------------------------------------------------------------------

    async def _fresh_video_url(self, upstream_job_id: str, key: str) -> str | None:
        try:
            task = await self._get_task(upstream_job_id, key)
        except UpstreamJobLost:
            return None  # the task is gone (Ark keeps them 7 days): nothing to collect
        return video_url(task)

    async def _save_video(self, url: str, destination: Path, key: str) -> bool:
        """True once the video at `url` is saved; False for a 4xx (an expired or not yet
        ready URL) or something that is not a video. The CDN is another origin: the key
        never goes there."""
        try:
            response = await self._http.download(url, destination, key, looks_like_video)
        except UnexpectedContent:
            return False
        if response is None:
            return True
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise self._http.error(response, kind=FailureKind.UNAVAILABLE)
        return False

    # -- errors ---------------------------------------------------------------------------

    def _error(
        self, response: httpx.Response, key: str, upstream_job_id: str | None = None
    ) -> UpstreamError:
        """An error answer as an `UpstreamError`: kind from the body's code, then the status;
        Ark's own words, cleaned of the host, the key and task ids."""
        code, message = error_details(json_object(response))
        kind, our_code = classify(response.status_code, code)
        return self._http.error(
            response,
            message=self._clean(message, key, upstream_job_id) if message else None,
            code=our_code,
            kind=kind,
        )

    def _clean(self, message: str, key: str, upstream_job_id: str | None = None) -> str:
        cleaned = self._http.clean(message, [upstream_job_id or ""], key=key)
        return TASK_ID.sub("[redacted]", cleaned)
