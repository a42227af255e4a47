"""The `vidu` adapter: the calls, content retrieval and the probe (see the package's docstring
for the protocol)."""

from __future__ import annotations

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
from vidrelay.upstreams.http import (
    UnexpectedContent,
    channel_http,
    json_object,
    looks_like_video,
    required_json_object,
)
from vidrelay.upstreams.messages import key_hint
from vidrelay.upstreams.vidu.errors import (
    TASK_NOT_FOUND,
    UPSTREAM_ID,
    describe,
    error_details,
    kind_for,
    task_failure,
)
from vidrelay.upstreams.vidu.request import submit_body, submit_path
from vidrelay.upstreams.vidu.status import (
    credits_exhausted,
    progress_percent,
    state_for_status,
    video_url,
)

CREDITS_PATH = "/ent/v2/credits"
PROBE_TASK_ID = "0"
"""A task id Vidu never hands out: looking it up checks the key and bills nothing."""


def token(key: str) -> dict[str, str]:
    """Vidu's scheme: `Authorization: Token <key>` (not Bearer)."""
    return {"Authorization": f"Token {key}"} if key else {}


class ViduUpstream:
    """One channel of the Vidu API; `base_url` is its root (`https://api.vidu.com`, or
    `https://api.vidu.cn` in China). Holds one connection pool and the video URLs that
    status answers named (until `release`): they expire, so a failed download asks again."""

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
        self._http = channel_http(
            base_url,
            timeout_s=timeout_s,
            max_connections=max_connections,
            transport=transport,
            auth_headers=token,
        )
        self._video_urls: dict[str, str] = {}

    async def submit(self, request: UpstreamRequest, key: str) -> str:
        body = submit_body(request)
        response = await self._http.send(
            "POST", self._http.url(submit_path(request)), key, json=body
        )
        if not response.is_success:
            raise self._error(response, key)
        answer = required_json_object(response)
        task_id = answer.get("task_id", answer.get("id"))
        if isinstance(task_id, int) and not isinstance(task_id, bool):
            task_id = str(task_id)
        if not isinstance(task_id, str) or not task_id.strip():
            raise UpstreamError(
                "The upstream accepted the request but returned no task id.",
                code="upstream_bad_response",
                kind=FailureKind.UNAVAILABLE,
            )
        # An answer that already says `failed` still names a task: the next poll reports why.
        return task_id

    async def poll(self, upstream_job_id: str, key: str) -> UpstreamStatus:
        body = await self._get_task(upstream_job_id, key)
        state, implied = state_for_status(body.get("state"))
        if state is UpstreamState.FAILED:
            code, message = task_failure(body.get("err_code"))
            return UpstreamStatus(
                state, error_code=code, error_message=self._clean(message, key, upstream_job_id)
            )
        return UpstreamStatus(state, progress_percent(body, implied))

    async def fetch_content(
        self, upstream_job_id: str, variant: str, destination: Path, key: str
    ) -> bool:
        """The video from the URL the task names; previews are the engine's to derive."""
        if variant != "video":
            return False
        known = self._video_urls.get(upstream_job_id)
        failure = await self._save_video(known, destination, key) if known else None
        if known and failure is None:
            return True
        if failure is None or failure.kind is FailureKind.CONTENT_UNAVAILABLE:
            # No URL yet, or it expired (Vidu's URLs are signed for hours): ask for a fresh one.
            try:
                await self._get_task(upstream_job_id, key)
            except UpstreamJobLost:
                raise self._not_there() from None
            fresh = self._video_urls.get(upstream_job_id)
            if fresh and fresh != known:
                failure = await self._save_video(fresh, destination, key)
                if failure is None:
                    return True
        raise failure or self._not_there()

    async def release(self, upstream_job_id: str) -> None:
        self._video_urls.pop(upstream_job_id, None)

    async def probe(self, key: str) -> KeyProbe:
        """Ask the account's credits (`GET /ent/v2/credits`): reachability, the key and the
        balance at once, billing nothing. Where that look-up is not offered (404), look up a
        task that cannot exist: Vidu checks the key, then answers `TaskNotFound`."""
        response = await self._http.send(
            "GET", self._http.url(CREDITS_PATH), key, params={"show_detail": "false"}
        )
        if response.status_code in (404, 405):
            return await self._probe_by_task_lookup(key)
        hint = key_hint(key)
        asked = "asked the account's credits"
        if response.is_success:
            body = required_json_object(response)
            if credits_exhausted(body):
                return KeyProbe(hint, False, f"the account has no credits left ({asked})")
            return KeyProbe(hint, True, f"the key was accepted ({asked})")
        return self._probe_refusal(response, key, asked)

    async def _probe_by_task_lookup(self, key: str) -> KeyProbe:
        looked_up = f"looked up task {PROBE_TASK_ID}, which does not exist"
        response = await self._http.send("GET", self._task_url(PROBE_TASK_ID), key)
        reason = error_details(json_object(response)).reason
        if response.is_success or reason == TASK_NOT_FOUND:
            return KeyProbe(key_hint(key), True, f"the key was accepted ({looked_up})")
        return self._probe_refusal(response, key, looked_up)

    def _probe_refusal(self, response: httpx.Response, key: str, asked: str) -> KeyProbe:
        """What an error answer to a probe's look-up says of the key."""
        kind, code = kind_for(error_details(json_object(response)).reason, response.status_code)
        kind = kind or failure_kind_for_status(response.status_code)
        hint = key_hint(key)
        if kind is FailureKind.REJECTED:  # the key passed; the look-up itself was refused
            return KeyProbe(hint, True, f"the key was accepted ({asked})")
        if kind is FailureKind.RATE_LIMITED:
            return KeyProbe(hint, True, f"the key was accepted but is rate limited ({asked})")
        if kind is FailureKind.AUTH and code is None:
            return KeyProbe(hint, False, f"the key was refused ({response.status_code}, {asked})")
        return KeyProbe(hint, False, f"{self._error(response, key).message} ({asked})")

    async def close(self) -> None:
        await self._http.close()

    # -- requests -------------------------------------------------------------------------

    def _task_url(self, upstream_job_id: str) -> str:
        return self._http.url(f"/ent/v2/tasks/{quote(upstream_job_id, safe='')}/creations")

    async def _get_task(self, upstream_job_id: str, key: str) -> dict[str, Any]:
        response = await self._http.send("GET", self._task_url(upstream_job_id), key)
        reason = error_details(json_object(response)).reason
        if response.status_code == 404 or (not response.is_success and reason == TASK_NOT_FOUND):
            raise UpstreamJobLost()
        if not response.is_success:
            raise self._error(response, key, upstream_job_id)
        body = required_json_object(response)
        url = video_url(body)
        if url:
            self._video_urls[upstream_job_id] = url
        return body

    # -- content --------------------------------------------------------------------------

    async def _save_video(self, url: str, destination: Path, key: str) -> UpstreamError | None:
        """None once the video at `url` is saved, else why not (a 4xx or a page that is not
        a video: CONTENT_UNAVAILABLE; a 5xx: UNAVAILABLE; a 429: RATE_LIMITED)."""
        try:
            response = await self._http.download(url, destination, key, looks_like_video)
        except UnexpectedContent:
            return self._not_there("The upstream sent something that is not a video.")
        if response is None:
            return None
        status = response.status_code
        if 400 <= status < 500 and status not in (408, 429):
            return self._not_there()  # expired (403), not there yet (404): ask again later
        return self._http.error(response, key=key)

    @staticmethod
    def _not_there(message: str = "The upstream has no video for this job (yet).") -> UpstreamError:
        return UpstreamError(
            message, code="content_unavailable", kind=FailureKind.CONTENT_UNAVAILABLE
        )

    # -- errors ---------------------------------------------------------------------------

    def _error(
        self, response: httpx.Response, key: str, upstream_job_id: str | None = None
    ) -> UpstreamError:
        """An error answer as an `UpstreamError`, read from Vidu's `reason` first."""
        details = error_details(json_object(response))
        kind, code = kind_for(details.reason, response.status_code)
        kind = kind or failure_kind_for_status(response.status_code)
        fallback = "the upstream refused the request"
        message = describe(details, fallback) if details.reason or details.message else None
        return self._http.error(
            response,
            message=self._clean(message, key, upstream_job_id) if message else None,
            code=code,
            kind=kind,
        )

    def _clean(self, message: str, key: str, upstream_job_id: str | None = None) -> str:
        cleaned = self._http.clean(message, [upstream_job_id or ""], key=key)
        return UPSTREAM_ID.sub("[redacted]", cleaned)
