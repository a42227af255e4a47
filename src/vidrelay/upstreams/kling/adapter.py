"""The `kling` adapter: the calls, content retrieval and the probe (see the package's docstring
for the protocol)."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from vidrelay.domain.catalog import Operation
from vidrelay.domain.channels import OperationSupport
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
)
from vidrelay.upstreams.kling.auth import KlingTokens
from vidrelay.upstreams.kling.errors import (
    classify,
    is_task_missing,
    service_code,
    service_message,
)
from vidrelay.upstreams.kling.request import ENDPOINTS, TEXT_TO_VIDEO, endpoint_for, map_request
from vidrelay.upstreams.kling.status import (
    failure_code,
    failure_reason,
    progress_for_status,
    state_for_status,
    video_id,
    video_url,
)
from vidrelay.upstreams.messages import key_hint, key_pair

# Kling's task ids are long numbers, request ids UUIDs: scrubbed even when an answer quotes
# one we were never told.
_KLING_IDS = re.compile(
    r"\b[0-9]{12,}\b|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.I
)
PROBE_PATH = "/v1/videos/text2video"
PROBE_QUERY = {"pageNum": "1", "pageSize": "1"}


def job_id(endpoint: str, task_id: str) -> str:
    """The id handed to the engine: the endpoint that made the task and Kling's task id, so a
    restarted process still knows where to query it."""
    return f"{endpoint}:{task_id}"


def split_job_id(upstream_job_id: str) -> tuple[str, str]:
    endpoint, sep, task_id = upstream_job_id.partition(":")
    if sep and endpoint in ENDPOINTS and task_id:
        return endpoint, task_id
    return TEXT_TO_VIDEO, upstream_job_id


class KlingUpstream:
    """One channel of Kling's API; `base_url` is the API root (`https://api-singapore.klingai.com`
    or `https://api-beijing.klingai.com`), keys are `ACCESS_KEY:SECRET_KEY` pairs.

    Holds one connection pool, the signed tokens of its keys and the video URLs that task
    queries named (until `release`).
    """

    operations = OperationSupport(by_upstream_id=frozenset({Operation.EXTENSION}))
    """Kling extends a video it made, on the account that made it, by its own video id
    (`task_result.videos[0].id`, reported at completion and kept on the job) with 4 to 5 s
    more: `POST /v1/videos/video-extend`, queried like any task (https://app.klingai.com/
    global/dev/document-api/apiReference/model/videoExtension). Its API has no remix, edit or
    character (element) to map to the official ones."""

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
        self._tokens = KlingTokens()
        self._http = channel_http(
            base_url.rstrip("/"),
            timeout_s=timeout_s,
            max_connections=max_connections,
            transport=transport,
            auth_headers=self._tokens.headers,
        )
        self._video_urls: dict[str, str] = {}

    async def submit(self, request: UpstreamRequest, key: str) -> str:
        body = map_request(request)
        endpoint = endpoint_for(request)
        response = await self._http.send(
            "POST", self._http.url(f"/v1/videos/{endpoint}"), key, json=body
        )
        data = self._data(self._answer(response, key))
        task_id = data.get("task_id")
        if isinstance(task_id, bool) or not isinstance(task_id, str | int) or not str(task_id):
            raise UpstreamError(
                "The upstream accepted the request but returned no task id.",
                code="upstream_bad_response",
                kind=FailureKind.UNAVAILABLE,
            )
        # A task that is already `failed` still has an id: the next query reports it.
        return job_id(endpoint, str(task_id).strip())

    async def find_submission(self, request: UpstreamRequest, key: str) -> str | None:
        """Kling answers a query by the `external_task_id` given at submission as by its own
        task id."""
        endpoint = endpoint_for(request)
        try:
            task = await self._query(job_id(endpoint, request.submission_token), key)
        except UpstreamJobLost:
            return None
        task_id = task.get("task_id")
        if isinstance(task_id, bool) or not isinstance(task_id, str | int) or not str(task_id):
            return None
        return job_id(endpoint, str(task_id).strip())

    async def poll(self, upstream_job_id: str, key: str) -> UpstreamStatus:
        task = await self._query(upstream_job_id, key)
        status = task.get("task_status")
        state = state_for_status(status)
        if state is UpstreamState.FAILED:
            reason = failure_reason(task)
            return UpstreamStatus(
                state,
                error_code=failure_code(reason),
                error_message=self._clean(
                    reason or "The upstream failed to generate the video.", key, upstream_job_id
                ),
            )
        ref = video_id(task) if state is UpstreamState.COMPLETED else None
        return UpstreamStatus(state, progress_for_status(status), video_ref=ref)

    async def fetch_content(
        self, upstream_job_id: str, variant: str, destination: Path, key: str
    ) -> bool:
        """The video from the URL a query named; Kling offers no previews (the engine derives
        them). The URL expires: when it fails, the task is queried once for a fresh one."""
        if variant != "video":
            return False
        known = self._video_urls.get(upstream_job_id)
        if known and await self._save_video(known, destination, key, upstream_job_id):
            return True
        with contextlib.suppress(UpstreamJobLost):
            await self._query(upstream_job_id, key)
        fresh = self._video_urls.get(upstream_job_id)
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

    async def probe(self, key: str) -> KeyProbe:
        """Lists one text-to-video task: free, and it needs a valid signed token."""
        hint = key_hint(key)
        if key_pair(key) is None:
            return KeyProbe(hint, False, "not a key pair: write it ACCESS_KEY:SECRET_KEY")
        response = await self._http.send("GET", self._http.url(PROBE_PATH), key, params=PROBE_QUERY)
        lookup = "listing one text-to-video task (GET /v1/videos/text2video?pageSize=1)"
        body = json_object(response)
        code = service_code(body)
        if response.is_success and code == 0:
            return KeyProbe(hint, True, f"{lookup}: the key pair was accepted")
        kind, client_code = classify(code, response.status_code)
        shown = code if code is not None else response.status_code
        if client_code == "upstream_balance_exhausted":
            return KeyProbe(hint, False, f"{lookup}: the account's balance is exhausted ({shown})")
        if kind is FailureKind.AUTH:
            return KeyProbe(hint, False, f"{lookup}: the key pair was refused ({shown})")
        error = self._error(response, body, key)
        return KeyProbe(hint, False, f"{lookup}: {error.message}")

    async def close(self) -> None:
        await self._http.close()

    # -- requests -------------------------------------------------------------------------

    async def _query(self, upstream_job_id: str, key: str) -> dict[str, Any]:
        """The task's `data`, its video URL remembered; `UpstreamJobLost` when Kling has no
        such task."""
        endpoint, task_id = split_job_id(upstream_job_id)
        url = self._http.url(f"/v1/videos/{endpoint}/{quote(task_id, safe='')}")
        response = await self._http.send("GET", url, key)
        task = self._data(self._answer(response, key, upstream_job_id, querying=True))
        found = video_url(task)
        if found:
            self._video_urls[upstream_job_id] = found
        return task

    def _answer(
        self,
        response: httpx.Response,
        key: str,
        upstream_job_id: str | None = None,
        *,
        querying: bool = False,
    ) -> dict[str, Any]:
        """The answer's body when its `code` is 0; otherwise the error it means."""
        body = json_object(response)
        code = service_code(body)
        if response.is_success and code == 0 and body is not None:
            return body
        if querying and is_task_missing(code, service_message(body)):
            raise UpstreamJobLost()
        raise self._error(response, body, key, upstream_job_id)

    def _data(self, body: dict[str, Any]) -> dict[str, Any]:
        data = body.get("data")
        if not isinstance(data, dict):
            raise UpstreamError(
                "The upstream answered without the task it was asked about.",
                code="upstream_bad_response",
                kind=FailureKind.UNAVAILABLE,
            )
        return data

    # -- content --------------------------------------------------------------------------

    async def _save_video(
        self, url: str, destination: Path, key: str, upstream_job_id: str
    ) -> bool:
        """True once saved; False when the URL answers 4xx (not there yet, expired) or with
        something that is not a video; a 5xx or a broken transfer raises (retryable)."""
        try:
            response = await self._http.download(url, destination, key, looks_like_video)
        except UnexpectedContent:
            return False
        if response is None:
            return True
        if 400 <= response.status_code < 500:
            return False
        raise self._http.error(
            response,
            kind=FailureKind.UNAVAILABLE,
            code="upstream_unavailable",
            hide=self._hidden(upstream_job_id),
            key=key,
        )

    # -- errors ---------------------------------------------------------------------------

    def _error(
        self,
        response: httpx.Response,
        body: dict[str, Any] | None,
        key: str,
        upstream_job_id: str | None = None,
    ) -> UpstreamError:
        kind, code = classify(service_code(body), response.status_code)
        message = service_message(body)
        if message is None and code == "upstream_bad_response":
            message = f"The upstream answered {response.status_code} with a body it cannot read."
        return self._http.error(
            response,
            message=self._clean(message, key, upstream_job_id) if message else None,
            code=code,
            kind=kind,
        )

    def _clean(self, message: str, key: str, upstream_job_id: str | None) -> str:
        cleaned = self._http.clean(message, self._hidden(upstream_job_id), key=key)
        return _KLING_IDS.sub("[redacted]", cleaned)

    def _hidden(self, upstream_job_id: str | None) -> list[str]:
        if not upstream_job_id:
            return []
        return [upstream_job_id, split_job_id(upstream_job_id)[1]]
