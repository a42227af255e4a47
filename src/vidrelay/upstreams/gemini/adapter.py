"""The `gemini` adapter: the calls, content retrieval and the probe (see the package's
docstring for the protocol)."""

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
from vidrelay.upstreams.gemini.errors import UPSTREAM_ID, classify, parse_error
from vidrelay.upstreams.gemini.request import map_request
from vidrelay.upstreams.gemini.status import read_operation
from vidrelay.upstreams.http import (
    UnexpectedContent,
    channel_http,
    json_object,
    looks_like_video,
    required_json_object,
)
from vidrelay.upstreams.messages import key_hint

API_VERSION = "/v1beta"
API_KEY_HEADER = "x-goog-api-key"
PROBE_LOOKUP = "listed the models (GET /v1beta/models?pageSize=1)"
_OPERATION_NAME = re.compile(r"[\w.-]+(?:/[\w.-]+)*")


def api_key_header(key: str) -> dict[str, str]:
    """Gemini takes the key in `x-goog-api-key` (never `?key=`: URLs end up in logs)."""
    return {API_KEY_HEADER: key} if key else {}


class GeminiUpstream:
    """One channel of the Gemini API; `base_url` is the API root
    (`https://generativelanguage.googleapis.com`, with or without `/v1beta`).

    Holds one connection pool and the video URIs that operations named (until `release`).
    """

    operations = OperationSupport(by_upstream_id=frozenset({Operation.EXTENSION}))
    """Veo 3.1 extends a video it made, for the project (key) that made it, by 7 s: the same
    `predictLongRunning` with the video URI the operation answered (reported at completion and
    kept on the job) as `instances[0].video` ("Extending Veo videos",
    https://ai.google.dev/gemini-api/docs/video; https://docs.cloud.google.com/
    gemini-enterprise-agent-platform/models/video/extend-videos). The Gemini API has no remix,
    edit or character to map to the official ones."""

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
            base_url.rstrip("/").removesuffix(API_VERSION),
            timeout_s=timeout_s,
            max_connections=max_connections,
            transport=transport,
            auth_headers=api_key_header,
        )
        self._video_uris: dict[str, str] = {}

    async def submit(self, request: UpstreamRequest, key: str) -> str:
        body = map_request(request)
        model = quote(request.model.removeprefix("models/"), safe="")
        url = self._http.url(f"{API_VERSION}/models/{model}:predictLongRunning")
        response = await self._http.send("POST", url, key, json=body)
        if response.status_code == 404:
            # No such model on this channel (a model map naming one it lacks, a wrong base
            # URL): another channel may serve the job, so not a refusal.
            raise self._error(response, key, kind=FailureKind.UNAVAILABLE)
        if not response.is_success:
            raise self._error(response, key)
        operation = required_json_object(response)
        name = operation.get("name")
        if not isinstance(name, str) or self._operation_url(name) is None:
            raise UpstreamError(
                "The upstream accepted the request but returned no operation name.",
                code="upstream_bad_response",
                kind=FailureKind.UNAVAILABLE,
            )
        self._remember_video_uri(name, operation)  # a body that is already done
        return name

    async def poll(self, upstream_job_id: str, key: str) -> UpstreamStatus:
        operation = read_operation(await self._get_operation(upstream_job_id, key))
        if operation.state is UpstreamState.FAILED:
            return UpstreamStatus(
                operation.state,
                operation.progress,
                error_code=operation.error_code,
                error_message=self._clean(operation.error_message or "", key, upstream_job_id),
            )
        return UpstreamStatus(operation.state, operation.progress, video_ref=operation.video_uri)

    async def fetch_content(
        self, upstream_job_id: str, variant: str, destination: Path, key: str
    ) -> bool:
        """The video from the URI the operation named (on the API host, with the key; it
        redirects to storage, which never sees the key). A URI that fails is looked up again
        once: a fresh one is tried, the same one is not there (yet). Gemini offers no previews.
        """
        if variant != "video":
            return False
        known = self._video_uris.get(upstream_job_id)
        looked_up = known is None
        if known is None:
            known = await self._fresh_video_uri(upstream_job_id, key)
        if known is None:
            raise _no_video_yet()
        response = await self._save_video(known, destination, key)
        if response is None:
            return True
        error = self._content_error(response, key, upstream_job_id)
        if error.kind is not FailureKind.CONTENT_UNAVAILABLE or looked_up:
            raise error
        fresh = await self._fresh_video_uri(upstream_job_id, key)
        if fresh is not None and fresh != known:
            retried = await self._save_video(fresh, destination, key)
            if retried is None:
                return True
            error = self._content_error(retried, key, upstream_job_id)
        raise error

    async def release(self, upstream_job_id: str) -> None:
        self._video_uris.pop(upstream_job_id, None)

    async def probe(self, key: str) -> KeyProbe:
        """List one model: free, and it needs an accepted key."""
        response = await self._http.send(
            "GET", self._http.url(f"{API_VERSION}/models"), key, params={"pageSize": "1"}
        )
        hint = key_hint(key)
        if response.is_success:
            return KeyProbe(hint, True, f"the key was accepted: {PROBE_LOOKUP}")
        error = self._error(response, key)
        if error.kind is FailureKind.RATE_LIMITED:
            return KeyProbe(hint, True, f"the key was accepted, rate limited now: {PROBE_LOOKUP}")
        if error.kind is FailureKind.AUTH:
            refused = f"the key was refused ({response.status_code} {error.code})"
            return KeyProbe(hint, False, f"{refused}: {PROBE_LOOKUP}")
        return KeyProbe(hint, False, f"{error.message} ({PROBE_LOOKUP})")

    async def close(self) -> None:
        await self._http.close()

    # -- operations -----------------------------------------------------------------------

    def _operation_url(self, name: str) -> str | None:
        """`/v1beta/{name}` for a name such as `models/veo-…/operations/abc123`; None for
        anything else (it is never sent)."""
        segments = name.split("/")
        if not _OPERATION_NAME.fullmatch(name) or any(s in (".", "..") for s in segments):
            return None
        return self._http.url(f"{API_VERSION}/{name}")

    async def _get_operation(self, name: str, key: str) -> dict[str, Any]:
        url = self._operation_url(name)
        if url is None:
            raise UpstreamJobLost()
        response = await self._http.send("GET", url, key)
        if response.status_code == 404:
            raise UpstreamJobLost()
        if not response.is_success:
            raise self._error(response, key, name)
        operation = required_json_object(response)
        self._remember_video_uri(name, operation)
        return operation

    def _remember_video_uri(self, name: str, body: dict[str, Any]) -> None:
        uri = read_operation(body).video_uri
        if uri is not None:
            self._video_uris[name] = self._absolute(uri)

    def _absolute(self, uri: str) -> str:
        """A URI as the operation gave it: absolute, or a path under the API root."""
        if uri.lower().startswith(("http://", "https://")):
            return uri
        path = uri.lstrip("/")
        if not path.startswith(API_VERSION[1:] + "/"):
            path = f"{API_VERSION[1:]}/{path}"
        return self._http.url(f"/{path}")

    # -- content --------------------------------------------------------------------------

    async def _fresh_video_uri(self, name: str, key: str) -> str | None:
        with contextlib.suppress(UpstreamJobLost):
            operation = read_operation(await self._get_operation(name, key))
            if operation.video_uri is not None:
                return self._absolute(operation.video_uri)
        return None

    async def _save_video(self, uri: str, destination: Path, key: str) -> httpx.Response | None:
        """None once saved; else the error answer. Something that is not a video (an HTML
        page served as the file) is not there either."""
        try:
            return await self._http.download(uri, destination, key, looks_like_video)
        except UnexpectedContent:
            raise UpstreamError(
                "The upstream sent something that is not a video.",
                code="content_unavailable",
                kind=FailureKind.CONTENT_UNAVAILABLE,
            ) from None

    def _content_error(self, response: httpx.Response, key: str, name: str) -> UpstreamError:
        """A refused download means "not there (yet)" (CONTENT_UNAVAILABLE): a 4xx, or
        storage refusing a link. The API refusing our key stays AUTH, and rate limits and
        5xx keep their meaning."""
        error = self._error(response, key, name)
        foreign = not self._http.same_origin(response.url)
        if error.kind is FailureKind.REJECTED or (error.kind is FailureKind.AUTH and foreign):
            provider_message = parse_error(json_object(response)).message
            message = (
                error.message
                if provider_message
                else f"The upstream has no video for this job (yet) ({response.status_code})."
            )
            return UpstreamError(
                message, code="content_unavailable", kind=FailureKind.CONTENT_UNAVAILABLE
            )
        return error

    # -- errors ---------------------------------------------------------------------------

    def _error(
        self,
        response: httpx.Response,
        key: str,
        name: str | None = None,
        kind: FailureKind | None = None,
    ) -> UpstreamError:
        """An error answer as an `UpstreamError`, read from its body (see `errors`)."""
        error = parse_error(json_object(response))
        mapped_kind, code = classify(response.status_code, error)
        kind = kind or mapped_kind
        message = self._clean(error.message, key, name) if error.message else None
        upstream_error = self._http.error(response, message=message, code=code, kind=kind)
        if upstream_error.retry_after_s is None and kind is FailureKind.RATE_LIMITED:
            upstream_error.retry_after_s = error.retry_delay_s
        return upstream_error

    def _clean(self, message: str, key: str, name: str | None = None) -> str:
        hide = [name, name.rsplit("/", 1)[-1]] if name else []
        return self._http.clean(UPSTREAM_ID.sub("[redacted]", message), hide, key=key)


def _no_video_yet() -> UpstreamError:
    return UpstreamError(
        "The upstream has no video for this job (yet).",
        code="content_unavailable",
        kind=FailureKind.CONTENT_UNAVAILABLE,
    )
