"""The `openai` adapter: the calls, content retrieval and the probe (see the package's
docstring for the protocol and its tolerances)."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from vidrelay.domain.catalog import Operation
from vidrelay.domain.channels import OperationSupport
from vidrelay.upstreams.base import (
    CharacterInput,
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
    looks_like_image,
    looks_like_video,
    required_json_object,
)
from vidrelay.upstreams.messages import key_hint
from vidrelay.upstreams.openai.errors import UPSTREAM_ID, error_details
from vidrelay.upstreams.openai.request import derived_call, submit_parts
from vidrelay.upstreams.openai.status import (
    poll_after_s,
    progress_percent,
    state_for_status,
    video_url,
)

_NO_VARIANT_STATUSES = frozenset({400, 404, 405, 415, 422})


class OpenAIUpstream:
    """One channel of an OpenAI-compatible upstream; `base_url` is the origin, without `/v1`.

    Holds one connection pool, the video URLs that status answers named (until `release`),
    and whether the upstream turned out to offer no preview variants (asked once, not per job).
    """

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
        # Operators often paste the SDK's base URL (`…/v1`); both spellings mean the same.
        self._http = channel_http(
            base_url.rstrip("/").removesuffix("/v1"),
            timeout_s=timeout_s,
            max_connections=max_connections,
            transport=transport,
        )
        self._video_urls: dict[str, str] = {}
        self._variants_offered = True
        self._characters: dict[tuple[str, str], str] = {}
        """(key digest, our `char_…`) → the upstream's id of that character."""

    operations = OperationSupport(
        by_upstream_id=frozenset({Operation.REMIX, Operation.EXTENSION, Operation.EDIT}),
        from_file=frozenset({Operation.EXTENSION, Operation.EDIT, Operation.CHARACTER}),
    )
    """Passed through to the official endpoints; a remix only of a video this channel made."""

    async def submit(self, request: UpstreamRequest, key: str) -> str:
        if request.request.operation is Operation.CREATE:
            characters = await self._upstream_characters(request.characters, key)
            response = await self._http.send(
                "POST", self._http.url("/v1/videos"), key, files=submit_parts(request, characters)
            )
        else:
            response = await self._send_derived(request, key)
        return self._submitted(response, key)

    async def _send_derived(self, request: UpstreamRequest, key: str) -> httpx.Response:
        source = request.request.source
        held = source.upstream_job_id if source and source.channel == self.name else None
        call = derived_call(request, held)
        url = self._http.url(call.path)
        if call.json is not None:
            return await self._http.send("POST", url, key, json=call.json)
        if not call.needs_file:
            return await self._http.send("POST", url, key, files=call.parts)
        if request.source_video is None or not request.source_video.exists():
            raise UpstreamError(
                "The source video is no longer stored here.", code="source_video_unavailable"
            )
        with request.source_video.open("rb") as video:
            return await self._http.send(
                "POST", url, key, files=[*call.parts, ("video", ("source.mp4", video, "video/mp4"))]
            )

    async def _upstream_characters(
        self, characters: tuple[CharacterInput, ...], key: str
    ) -> tuple[str, ...]:
        """The upstream's ids of the characters a create names, each uploaded once per key
        (`POST /v1/videos/characters`; an upstream knows a character only on its account)."""
        ids: list[str] = []
        for character in characters:
            known = self._characters.get((_key_digest(key), character.id))
            if known is None:
                known = await self._create_character(character, key)
                self._characters[(_key_digest(key), character.id)] = known
            ids.append(known)
        return tuple(ids)

    async def _create_character(self, character: CharacterInput, key: str) -> str:
        with character.clip.open("rb") as clip:
            response = await self._http.send(
                "POST",
                self._http.url("/v1/videos/characters"),
                key,
                files=[
                    ("name", (None, character.name, None)),
                    ("video", ("character.mp4", clip, "video/mp4")),
                ],
            )
        if not response.is_success:
            raise self._error(response, key)
        upstream_id = required_json_object(response).get("id")
        if not isinstance(upstream_id, str) or not upstream_id:
            raise UpstreamError(
                "The upstream made the character but returned no id.",
                code="upstream_bad_response",
                kind=FailureKind.UNAVAILABLE,
            )
        return upstream_id

    def _submitted(self, response: httpx.Response, key: str) -> str:
        """The upstream's id of the job a submit made."""
        if response.status_code in (404, 405):
            # No such endpoint or model on this channel (a wrong base URL, a model map that
            # names a model it lacks): another channel may serve the job, so not a refusal.
            raise self._error(response, key, kind=FailureKind.UNAVAILABLE)
        if not response.is_success:
            raise self._error(response, key)
        body = required_json_object(response)
        upstream_job_id = body.get("id", body.get("task_id"))
        if isinstance(upstream_job_id, bool) or not isinstance(upstream_job_id, str | int):
            upstream_job_id = None
        if upstream_job_id is None or not str(upstream_job_id).strip():
            raise UpstreamError(
                "The upstream accepted the request but returned no job id.",
                code="upstream_bad_response",
                kind=FailureKind.UNAVAILABLE,
            )
        # A body that already says `failed` still names a job: the next poll reports it.
        self._remember_video_url(str(upstream_job_id), body)
        return str(upstream_job_id)

    async def poll(self, upstream_job_id: str, key: str) -> UpstreamStatus:
        response, body = await self._get_job(upstream_job_id, key)
        state = state_for_status(body.get("status"))
        if state is UpstreamState.FAILED:
            code, message = error_details(body)
            if message is None and str(body.get("status")).lower() == "expired":
                code, message = code or "expired", "The upstream job expired before it finished."
            return UpstreamStatus(
                state,
                progress_percent(body.get("progress")),
                error_code=code or "generation_failed",
                error_message=self._clean(
                    message or "The upstream failed to generate the video.", key, upstream_job_id
                ),
            )
        progress = 100 if state is UpstreamState.COMPLETED else None
        return UpstreamStatus(
            state,
            progress if progress is not None else progress_percent(body.get("progress")),
            poll_after_s=poll_after_s(response.headers),
        )

    async def fetch_content(
        self, upstream_job_id: str, variant: str, destination: Path, key: str
    ) -> bool:
        if variant == "video":
            await self._fetch_video(upstream_job_id, destination, key)
            return True
        if variant not in ("thumbnail", "spritesheet") or not self._variants_offered:
            return False
        content_url = self._content_url(upstream_job_id)
        try:
            response = await self._http.download(
                content_url, destination, key, looks_like_image, {"variant": variant}
            )
        except UnexpectedContent:  # e.g. a relay that ignores `variant` and sends the video
            self._variants_offered = False
            return False
        if response is None:
            return True
        if response.status_code in _NO_VARIANT_STATUSES:
            self._variants_offered = False
            return False
        raise self._content_error(response, key, upstream_job_id)

    async def release(self, upstream_job_id: str) -> None:
        self._video_urls.pop(upstream_job_id, None)

    async def probe(self, key: str) -> KeyProbe:
        """Ask for the model list (free everywhere); an upstream without one lists videos."""
        response = await self._http.send("GET", self._http.url("/v1/models"), key)
        if response.status_code == 404:
            response = await self._http.send(
                "GET", self._http.url("/v1/videos"), key, params={"limit": 1}
            )
        status = response.status_code
        if response.is_success:
            return KeyProbe(key_hint(key), True, "the key was accepted")
        if status in (401, 403):
            return KeyProbe(key_hint(key), False, f"the key was refused ({status})")
        return KeyProbe(key_hint(key), False, self._error(response, key).message)

    async def close(self) -> None:
        await self._http.close()

    # -- requests -------------------------------------------------------------------------

    def _content_url(self, upstream_job_id: str) -> str:
        return self._http.url(f"/v1/videos/{quote(upstream_job_id, safe='')}/content")

    async def _get_job(
        self, upstream_job_id: str, key: str
    ) -> tuple[httpx.Response, dict[str, Any]]:
        url = self._http.url(f"/v1/videos/{quote(upstream_job_id, safe='')}")
        response = await self._http.send("GET", url, key)
        if response.status_code == 404:
            raise UpstreamJobLost()
        if not response.is_success:
            raise self._error(response, key, upstream_job_id)
        body = required_json_object(response)
        self._remember_video_url(upstream_job_id, body)
        return response, body

    def _remember_video_url(self, upstream_job_id: str, body: dict[str, Any]) -> None:
        url = video_url(body)
        if url:
            self._video_urls[upstream_job_id] = url

    # -- content --------------------------------------------------------------------------

    async def _fetch_video(self, upstream_job_id: str, destination: Path, key: str) -> None:
        """The `video_url` a status named first, then `/content`, then a fresh look for a URL.

        A remembered URL may have expired or may name something else: unless the connection
        breaks, its failure only falls back to `/content`.
        """
        known = self._video_urls.get(upstream_job_id)
        if known and await self._save_video(known, destination, key):
            return
        try:
            response = await self._http.download(
                self._content_url(upstream_job_id), destination, key, looks_like_video
            )
        except UnexpectedContent:
            raise UpstreamError(
                "The upstream sent something that is not a video.",
                code="content_unavailable",
                kind=FailureKind.CONTENT_UNAVAILABLE,
            ) from None
        if response is None:
            return
        if response.status_code != 404:
            raise self._content_error(response, key, upstream_job_id)
        with contextlib.suppress(UpstreamJobLost):  # look once for a URL it did not name yet
            await self._get_job(upstream_job_id, key)
        fresh = self._video_urls.get(upstream_job_id)
        if fresh and fresh != known and await self._save_video(fresh, destination, key):
            return
        raise UpstreamError(
            "The upstream has no video for this job (yet).",
            code="content_unavailable",
            kind=FailureKind.CONTENT_UNAVAILABLE,
        )

    async def _save_video(self, url: str, destination: Path, key: str) -> bool:
        """True once the video at `url` is saved; False for an error answer or a non-video."""
        try:
            return await self._http.download(url, destination, key, looks_like_video) is None
        except UnexpectedContent:
            return False

    def _content_error(
        self, response: httpx.Response, key: str, upstream_job_id: str
    ) -> UpstreamError:
        """Content answers map like others, but a 4xx means "not there (yet)", not a refusal."""
        kind = failure_kind_for_status(response.status_code)
        if kind is FailureKind.REJECTED:
            kind = FailureKind.CONTENT_UNAVAILABLE
        return self._error(response, key, upstream_job_id, kind)

    # -- errors ---------------------------------------------------------------------------

    def _error(
        self,
        response: httpx.Response,
        key: str,
        upstream_job_id: str | None = None,
        kind: FailureKind | None = None,
    ) -> UpstreamError:
        """An HTTP error as an `UpstreamError`: the upstream's own words, cleaned, if any."""
        body = json_object(response)
        code, message = error_details(body) if body is not None else (None, None)
        if body is not None and isinstance(body.get("id"), str):
            upstream_job_id = upstream_job_id or body["id"]
        return self._http.error(
            response,
            message=self._clean(message, key, upstream_job_id) if message else None,
            code=code,
            kind=kind,
        )

    def _clean(self, message: str, key: str, upstream_job_id: str | None = None) -> str:
        cleaned = self._http.clean(message, [upstream_job_id or ""], key=key)
        return UPSTREAM_ID.sub("[redacted]", cleaned)


def _key_digest(key: str) -> str:
    """Which key a cached character belongs to, without keeping the key itself around."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]
