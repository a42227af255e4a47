"""The `minimax` adapter: the calls, content retrieval and the probe (see the package's
docstring for the protocol)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
)
from vidrelay.upstreams.messages import key_hint
from vidrelay.upstreams.minimax.errors import (
    INVALID_PARAMS,
    UPSTREAM_ID,
    base_resp,
    describe,
    meaning,
)
from vidrelay.upstreams.minimax.request import map_request
from vidrelay.upstreams.minimax.status import file_id, progress_percent, state_for_status

SUBMIT_PATH = "/v1/video_generation"
QUERY_PATH = "/v1/query/video_generation"
RETRIEVE_PATH = "/v1/files/retrieve"
PROBE_TASK_ID = "0"
"""A task id no account has: looking it up bills nothing and shows whether the key is let in."""
_DOWNLOAD_TRIES = 2  # the URL a retrieve names, then one fresh URL if that one is refused


class MiniMaxUpstream:
    """One channel of MiniMax's video API; `base_url` is the API root (`https://api.minimax.io`).

    Holds one connection pool and the file ids of finished tasks (until `release`), so the
    video is fetched without asking for the task's status again.
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
        self._http = channel_http(
            base_url.rstrip("/"),
            timeout_s=timeout_s,
            max_connections=max_connections,
            transport=transport,
        )
        self._file_ids: dict[str, str] = {}

    async def submit(self, request: UpstreamRequest, key: str) -> str:
        body = map_request(request)
        response = await self._http.send("POST", self._http.url(SUBMIT_PATH), key, json=body)
        if response.status_code in (404, 405):
            # No such endpoint here (a base URL with a wrong prefix): another channel may
            # serve the job, so not a refusal of the request.
            raise self._http_error(response, key, kind=FailureKind.UNAVAILABLE)
        answer = self._answer(response, key)
        code, message = base_resp(answer)
        if code:
            raise self._refusal(response, code, message, key)
        task_id = answer.get("task_id")
        if isinstance(task_id, bool) or not isinstance(task_id, str | int) or not str(task_id):
            raise UpstreamError(
                "The upstream accepted the request but returned no task id.",
                code="upstream_bad_response",
                kind=FailureKind.UNAVAILABLE,
            )
        return str(task_id).strip()

    async def poll(self, upstream_job_id: str, key: str) -> UpstreamStatus:
        response, answer = await self._query(upstream_job_id, key)
        state = state_for_status(answer.get("status"))
        code, message = base_resp(answer)
        if code:
            code_meaning = meaning(code)
            if state is UpstreamState.FAILED or (
                code_meaning.kind is FailureKind.REJECTED and code != INVALID_PARAMS
            ):  # the job's own refusal (e.g. its video was moderated): it fails, refunded
                text = describe(code_meaning, code, message)
                return self._failed(code_meaning.code, text, key, upstream_job_id)
            if code == INVALID_PARAMS:  # the query's only parameter is the task id
                raise UpstreamJobLost()
            raise self._refusal(response, code, message, key, upstream_job_id)
        if state is UpstreamState.FAILED:
            reason = answer.get("error_message")
            text = "The upstream failed to generate the video"
            if isinstance(reason, str) and reason.strip():
                text += f": {reason.strip()}"
            return self._failed("generation_failed", text + ".", key, upstream_job_id)
        if state is UpstreamState.COMPLETED:
            found = file_id(answer)
            if found:
                self._file_ids[upstream_job_id] = found
        return UpstreamStatus(state, progress_percent(answer))

    async def fetch_content(
        self, upstream_job_id: str, variant: str, destination: Path, key: str
    ) -> bool:
        """The video only (MiniMax makes no previews; the engine derives them)."""
        if variant != "video":
            return False
        video_file_id = self._file_ids.get(upstream_job_id) or await self._look_up_file_id(
            upstream_job_id, key
        )
        status = 0
        for _ in range(_DOWNLOAD_TRIES):  # a refused URL (expired, not there yet): a fresh one
            url = await self._download_url(video_file_id, key, upstream_job_id)
            try:
                refused = await self._http.download(url, destination, key, looks_like_video)
            except UnexpectedContent:
                raise _content_unavailable(
                    "The upstream sent something that is not a video."
                ) from None
            if refused is None:
                return True
            status = refused.status_code
            kind = failure_kind_for_status(status)
            if kind in (FailureKind.UNAVAILABLE, FailureKind.RATE_LIMITED):
                raise self._http_error(refused, key, upstream_job_id, kind=kind)
        # A CDN's 4xx (403 for an expired link, 404 not yet there) is never about our key,
        # which it is not sent: the video is not there (yet).
        raise _content_unavailable(f"The upstream has no video for this job (yet) ({status}).")

    async def release(self, upstream_job_id: str) -> None:
        self._file_ids.pop(upstream_job_id, None)

    async def probe(self, key: str) -> KeyProbe:
        """Look up a task id that cannot exist: free, and refused only for the key's sake."""
        looked_up = f"looked up a task id that cannot exist ({QUERY_PATH})"
        response = await self._http.send(
            "GET", self._http.url(QUERY_PATH), key, params={"task_id": PROBE_TASK_ID}
        )
        hint = key_hint(key)
        if response.status_code in (401, 403):
            return KeyProbe(
                hint, False, f"{looked_up}: the key was refused ({response.status_code})"
            )
        answer = self._answer(response, key)
        code, message = base_resp(answer)
        if code:
            code_meaning = meaning(code)
            if code_meaning.kind is FailureKind.UNAVAILABLE:
                raise self._refusal(response, code, message, key)
            if code_meaning.kind is FailureKind.AUTH:
                text = self._clean(describe(code_meaning, code, message), key)
                return KeyProbe(hint, False, f"{looked_up}: {text}")
        return KeyProbe(hint, True, f"{looked_up}: the key was accepted")

    async def close(self) -> None:
        await self._http.close()

    # -- requests -------------------------------------------------------------------------

    async def _query(self, upstream_job_id: str, key: str) -> tuple[httpx.Response, dict[str, Any]]:
        response = await self._http.send(
            "GET", self._http.url(QUERY_PATH), key, params={"task_id": upstream_job_id}
        )
        return response, self._answer(response, key, upstream_job_id)

    async def _look_up_file_id(self, upstream_job_id: str, key: str) -> str:
        """The file id of a task this object did not see finish (e.g. after a restart)."""
        try:
            status = await self.poll(upstream_job_id, key)
        except UpstreamJobLost:
            raise _content_unavailable("The upstream no longer knows this job.") from None
        found = self._file_ids.get(upstream_job_id)
        if status.state is not UpstreamState.COMPLETED or found is None:
            raise _content_unavailable("The upstream has no video for this job (yet).")
        return found

    async def _download_url(self, video_file_id: str, key: str, upstream_job_id: str) -> str:
        """A fresh download URL for the file (each one expires)."""
        response = await self._http.send(
            "GET", self._http.url(RETRIEVE_PATH), key, params={"file_id": video_file_id}
        )
        hide = (upstream_job_id, video_file_id)
        if not response.is_success:
            kind = failure_kind_for_status(response.status_code)
            if kind is FailureKind.REJECTED:
                kind = FailureKind.CONTENT_UNAVAILABLE
            raise self._http_error(response, key, *hide, kind=kind)
        answer = self._answer(response, key, *hide)
        code, message = base_resp(answer)
        if code:
            error = self._refusal(response, code, message, key, *hide)
            if error.kind is FailureKind.REJECTED:  # e.g. no such file (yet)
                error.kind = FailureKind.CONTENT_UNAVAILABLE
                error.code = "content_unavailable"
            raise error
        described = answer.get("file")
        url = described.get("download_url") if isinstance(described, dict) else None
        if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
            raise _content_unavailable("The upstream named no download for this job's video.")
        return url

    # -- errors ---------------------------------------------------------------------------

    def _answer(self, response: httpx.Response, key: str, *hide: str) -> dict[str, Any]:
        """The JSON object of a successful HTTP answer; an `UpstreamError` otherwise."""
        if not response.is_success:
            raise self._http_error(response, key, *hide)
        body = json_object(response)
        if body is None:
            raise UpstreamError(
                f"The upstream answered {response.status_code} with a body that is not JSON.",
                code="upstream_bad_response",
                kind=FailureKind.UNAVAILABLE,
            )
        return body

    def _refusal(
        self, response: httpx.Response, code: int, message: str, key: str, *hide: str
    ) -> UpstreamError:
        """A `base_resp` refusal as an `UpstreamError` (`Retry-After` read if it slows us)."""
        code_meaning = meaning(code)
        return self._http.error(
            response,
            message=self._clean(describe(code_meaning, code, message), key, *hide),
            code=code_meaning.code,
            kind=code_meaning.kind,
        )

    def _http_error(
        self,
        response: httpx.Response,
        key: str,
        *hide: str,
        kind: FailureKind | None = None,
    ) -> UpstreamError:
        """An HTTP-level error (a gateway's 5xx, a wrong path): the body's words if it has a
        `base_resp`, else a generic text."""
        body = json_object(response)
        code, message = base_resp(body) if body is not None else (0, "")
        text = self._clean(f"{message} ({code})", key, *hide) if message else None
        return self._http.error(response, message=text, kind=kind)

    def _failed(self, code: str, message: str, key: str, upstream_job_id: str) -> UpstreamStatus:
        return UpstreamStatus(
            UpstreamState.FAILED,
            100,
            error_code=code,
            error_message=self._clean(message, key, upstream_job_id),
        )

    def _clean(self, message: str, key: str, *hide: str) -> str:
        cleaned = self._http.clean(message, hide, key=key)
        return UPSTREAM_ID.sub("[redacted]", cleaned)


def _content_unavailable(message: str) -> UpstreamError:
    return UpstreamError(message, code="content_unavailable", kind=FailureKind.CONTENT_UNAVAILABLE)
