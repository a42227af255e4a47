"""The `openai` adapter: any upstream that speaks the OpenAI Videos API (`/v1/videos`).

Official OpenAI, other relays, reverse vendors that accept `character_url`, self-hosted
vLLM-Omni. They share the wire protocol but not its details, so the adapter is tolerant where
they differ: status words (`queued`, `pending`, `NOT_START`, ...), progress as a percent, a
fraction or a string, the video at `/content` or behind a `video_url` (often a redirect to a
CDN), previews offered or not. Whatever it cannot read counts as "still running" or as a
retryable failure, never as a crash.
"""

from __future__ import annotations

import contextlib
import math
import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from vidrelay.domain.params import value_text
from vidrelay.media.reference_images import image_content_type
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

_STATES = {
    **dict.fromkeys(
        ("queued", "pending", "not_start", "not_started", "submitted", "processing",
         "in_progress", "running"),
        UpstreamState.RUNNING,
    ),
    **dict.fromkeys(
        ("succeeded", "success", "completed", "complete", "done"), UpstreamState.COMPLETED
    ),
    **dict.fromkeys(
        ("failed", "failure", "error", "cancelled", "canceled", "expired"), UpstreamState.FAILED
    ),
}  # fmt: skip
_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}
_NO_VARIANT_STATUSES = frozenset({400, 404, 405, 415, 422})
_ISO_MEDIA_BOXES = frozenset({b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide"})
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF8")
_SNIFF_BYTES = 12
_ERROR_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
# Upstream job ids (`video_68d7…`, `task_9f…`, UUIDs) must not reach a client even when an
# upstream quotes one we never saw, e.g. in the refusal of a submit. A digit is required, so
# words such as `task_failed` stay.
_UPSTREAM_ID = re.compile(
    r"\b(?:video|vid|task|job|gen|req)_(?=[A-Za-z_-]*[0-9])[A-Za-z0-9_-]{6,}"
    r"|\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
    re.IGNORECASE,
)


def state_for_status(status: object) -> UpstreamState:
    """Map an upstream's status word to ours, case-insensitively.

    Unknown or missing words count as running: a new word in some vendor's vocabulary then
    delays a job (until the engine's own deadline) instead of failing a paid job. `expired`
    is a failure: the engine only polls unfinished jobs, so it means the job never finished.
    """
    if not isinstance(status, str):
        return UpstreamState.RUNNING
    word = re.sub(r"[\s-]+", "_", status.strip().lower())
    return _STATES.get(word, UpstreamState.RUNNING)


class _UnexpectedContent(Exception):
    """A 200 whose body is not what was asked for (an HTML error page, JSON, the video again)."""


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
    ) -> None:
        self.name = name
        self.cost_per_second_micros = cost_per_second_micros
        # Operators often paste the SDK's base URL (`…/v1`); both spellings mean the same.
        self._base_url = base_url.rstrip("/").removesuffix("/v1")
        origin = httpx.URL(self._base_url)
        self._origin = (origin.scheme, origin.host, origin.port)
        self._secrets = (self._base_url, origin.netloc.decode("ascii"), origin.host)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )
        self._video_urls: dict[str, str] = {}
        self._variants_offered = True

    async def submit(self, request: UpstreamRequest, key: str) -> str:
        normalised = request.request
        fields = [
            ("model", request.model),
            ("prompt", normalised.prompt),
            ("seconds", normalised.seconds),
            ("size", normalised.size),
        ]
        if normalised.character_url:
            fields.append(("character_url", normalised.character_url))
            if normalised.character_timestamps_text:
                fields.append(("character_timestamps", normalised.character_timestamps_text))
        # Declared parameters go as the extra fields an SDK's `extra_body` would send.
        fields.extend((name, value_text(value)) for name, value in normalised.params.items())
        # Every field as a part without a filename: httpx sends multipart only with a file.
        parts: list[tuple[str, tuple[str | None, str | bytes, str | None]]] = [
            (field_name, (None, value, None)) for field_name, value in fields
        ]
        if request.reference_image is not None:
            filename, content_type = _image_file(request.reference_image)
            parts.append(("input_reference", (filename, request.reference_image, content_type)))
        response = await self._send("POST", self._url("/v1/videos"), key, files=parts)
        if response.status_code in (404, 405):
            # No such endpoint or model on this channel (a wrong base URL, a model map that
            # names a model it lacks): another channel may serve the job, so not a refusal.
            raise self._error(response, key, kind=FailureKind.UNAVAILABLE)
        if not response.is_success:
            raise self._error(response, key)
        body = self._json_object(response)
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
            code, message = _error_details(body)
            if message is None and str(body.get("status")).lower() == "expired":
                code, message = code or "expired", "The upstream job expired before it finished."
            return UpstreamStatus(
                state,
                _progress_percent(body.get("progress")),
                error_code=code or "generation_failed",
                error_message=self._clean(
                    message or "The upstream failed to generate the video.", key, upstream_job_id
                ),
            )
        progress = 100 if state is UpstreamState.COMPLETED else None
        return UpstreamStatus(
            state,
            progress if progress is not None else _progress_percent(body.get("progress")),
            poll_after_s=_poll_after_s(response.headers),
        )

    async def fetch_content(
        self, upstream_job_id: str, variant: str, destination: Path, key: str
    ) -> bool:
        if variant == "video":
            await self._fetch_video(upstream_job_id, destination, key)
            return True
        if variant not in ("thumbnail", "spritesheet") or not self._variants_offered:
            return False
        content_url = self._url(f"/v1/videos/{quote(upstream_job_id, safe='')}/content")
        try:
            response = await self._download(
                content_url, destination, key, _looks_like_image, {"variant": variant}
            )
        except _UnexpectedContent:  # e.g. a relay that ignores `variant` and sends the video
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
        response = await self._send("GET", self._url("/v1/models"), key)
        if response.status_code == 404:
            response = await self._send("GET", self._url("/v1/videos"), key, params={"limit": 1})
        status = response.status_code
        if response.is_success:
            return KeyProbe(key_hint(key), True, "the key was accepted")
        if status in (401, 403):
            return KeyProbe(key_hint(key), False, f"the key was refused ({status})")
        return KeyProbe(key_hint(key), False, self._error(response, key).message)

    async def close(self) -> None:
        await self._client.aclose()

    # -- requests -------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return self._base_url + path

    def _headers(self, url: str, key: str) -> dict[str, str]:
        """The key goes to the upstream's own origin only, never to a CDN it names."""
        target = httpx.URL(url)
        if not key or (target.scheme, target.host, target.port) != self._origin:
            return {}
        return {"Authorization": f"Bearer {key}"}

    async def _send(self, method: str, url: str, key: str, **options: Any) -> httpx.Response:
        try:
            return await self._client.request(
                method, url, headers=self._headers(url, key), **options
            )
        except httpx.TransportError as error:
            raise _transport_error(error) from None  # httpx's text may name the host

    async def _get_job(
        self, upstream_job_id: str, key: str
    ) -> tuple[httpx.Response, dict[str, Any]]:
        url = self._url(f"/v1/videos/{quote(upstream_job_id, safe='')}")
        response = await self._send("GET", url, key)
        if response.status_code == 404:
            raise UpstreamJobLost()
        if not response.is_success:
            raise self._error(response, key, upstream_job_id)
        body = self._json_object(response)
        self._remember_video_url(upstream_job_id, body)
        return response, body

    def _json_object(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise UpstreamError(
                f"The upstream answered {response.status_code} with a body that is not JSON.",
                code="upstream_bad_response",
                kind=FailureKind.UNAVAILABLE,
            )
        return body

    def _remember_video_url(self, upstream_job_id: str, body: dict[str, Any]) -> None:
        url = _video_url(body)
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
        content_url = self._url(f"/v1/videos/{quote(upstream_job_id, safe='')}/content")
        try:
            response = await self._download(content_url, destination, key, _looks_like_video)
        except _UnexpectedContent:
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
            return await self._download(url, destination, key, _looks_like_video) is None
        except _UnexpectedContent:
            return False

    async def _download(
        self,
        url: str,
        destination: Path,
        key: str,
        looks_right: Callable[[bytes], bool],
        params: dict[str, str] | None = None,
    ) -> httpx.Response | None:
        """Stream `url` into `destination` (atomically); None once saved, else the error reply.

        Writes to a temporary file beside `destination` and renames it, so a broken transfer
        never leaves a partial asset behind. Redirects are followed; httpx drops the
        `Authorization` header when one leaves the upstream's origin.
        """
        temporary = destination.with_name(f".{destination.name}.{secrets.token_hex(6)}.part")
        try:
            async with self._client.stream(
                "GET", url, params=params, headers=self._headers(url, key), follow_redirects=True
            ) as response:
                if not response.is_success:
                    await response.aread()
                    return response
                destination.parent.mkdir(parents=True, exist_ok=True)
                await _save(response, temporary, looks_right)
            temporary.replace(destination)
        except httpx.TransportError as error:
            raise _transport_error(error, "transfer") from None
        finally:
            temporary.unlink(missing_ok=True)
        return None

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
        status = response.status_code
        kind = kind or failure_kind_for_status(status)
        try:
            body = response.json()
        except ValueError:
            body = None
        code, message = _error_details(body) if isinstance(body, dict) else (None, None)
        if isinstance(body, dict) and isinstance(body.get("id"), str):
            upstream_job_id = upstream_job_id or body["id"]
        text = self._clean(message, key, upstream_job_id) if message else _generic(kind, status)
        slow_down = kind is FailureKind.RATE_LIMITED or status == 503
        retry_after = retry_after_s(response.headers.get("retry-after")) if slow_down else None
        return UpstreamError(
            text, code=code or f"upstream_{kind.value}", kind=kind, retry_after_s=retry_after
        )

    def _clean(self, message: str, key: str, upstream_job_id: str | None = None) -> str:
        cleaned = clean_upstream_message(message, [*self._secrets, key, upstream_job_id or ""])
        return _UPSTREAM_ID.sub("[redacted]", cleaned)


def _transport_error(error: httpx.TransportError, action: str = "request") -> UpstreamError:
    """A network failure, described by its class only: httpx's own text may name the host."""
    if isinstance(error, httpx.TimeoutException):
        detail = f"the {action} timed out"
    elif isinstance(error, httpx.ConnectError):
        detail = "it could not be reached"
    else:
        detail = f"the {action} broke off"
    return UpstreamError(
        f"The upstream is unavailable: {detail}.",
        code="upstream_unavailable",
        kind=FailureKind.UNAVAILABLE,
    )


async def _save(
    response: httpx.Response, temporary: Path, looks_right: Callable[[bytes], bool]
) -> None:
    head = b""
    checked = False
    with temporary.open("wb") as file:  # small local writes; a thread hop per chunk costs more
        async for chunk in response.aiter_bytes():
            if not checked:
                head += chunk[:_SNIFF_BYTES]
                if len(head) >= _SNIFF_BYTES:
                    checked = True
                    if not looks_right(head):
                        raise _UnexpectedContent()
            file.write(chunk)
    if not checked and not looks_right(head):
        raise _UnexpectedContent()
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and response.num_bytes_downloaded < int(declared):
        raise UpstreamError(
            "The upstream is unavailable: the transfer ended early.",
            code="upstream_unavailable",
            kind=FailureKind.UNAVAILABLE,
        )


def _looks_like_video(head: bytes) -> bool:
    """An ISO media file (MP4, MOV) starts with a box; an error page or JSON does not."""
    return head[4:8] in _ISO_MEDIA_BOXES


def _looks_like_image(head: bytes) -> bool:
    return head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _image_file(data: bytes) -> tuple[str, str]:
    """A filename and content type for the reference image, from its magic bytes."""
    content_type = image_content_type(data)
    return "reference" + _EXTENSIONS.get(content_type, ".bin"), content_type


def _video_url(body: dict[str, Any]) -> str | None:
    """Where a body names the finished video: `video_url`/`url` at the top or in `output`."""
    places: list[object] = [body]
    for nested in ("output", "result", "data"):
        value = body.get(nested)
        places.append(value[0] if isinstance(value, list) and value else value)
    for place in places:
        if not isinstance(place, dict):
            continue
        for field_name in ("video_url", "url", "download_url"):
            url = place.get(field_name)
            if isinstance(url, str) and url.lower().startswith(("http://", "https://")):
                return url
    return None


def _error_details(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """(code, message) from `{"error": {...}}`, `{"error": "..."}` or a relay's own fields."""
    error = body.get("error")
    code: object = None
    message: object = None
    if isinstance(error, dict):
        code, message = error.get("code") or error.get("type"), error.get("message")
    elif isinstance(error, str):
        message = error
    for field_name in ("fail_reason", "failure_reason", "message", "detail"):
        if isinstance(message, str) and message.strip():
            break
        message = body.get(field_name)
    clean_code = code if isinstance(code, str) and _ERROR_CODE.match(code) else None
    clean_message = message if isinstance(message, str) and message.strip() else None
    return clean_code, clean_message


def _generic(kind: FailureKind, status: int) -> str:
    if kind is FailureKind.AUTH:
        return f"The upstream refused the key ({status})."
    if kind is FailureKind.RATE_LIMITED:
        return f"The upstream is rate limiting requests ({status})."
    if kind is FailureKind.UNAVAILABLE:
        return f"The upstream is unavailable ({status})."
    return f"The upstream refused the request ({status})."


def _progress_percent(value: object) -> int | None:
    """0-100 from a percent, a 0-1 fraction or a string such as `"45%"`; None if unreadable."""
    if value is None or isinstance(value, bool):
        return None
    percent_sign = False
    if isinstance(value, str):
        text = value.strip()
        percent_sign = text.endswith("%")
        value = text.rstrip("%")
    if not isinstance(value, str | int | float):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    if 0 < number < 1 and not percent_sign:
        number *= 100
    return round(min(100.0, max(0.0, number)))


def _poll_after_s(headers: httpx.Headers) -> float | None:
    milliseconds = headers.get("openai-poll-after-ms")
    if milliseconds:
        try:
            value = float(milliseconds) / 1000
        except ValueError:
            value = math.nan
        if math.isfinite(value) and value >= 0:
            return value
    return retry_after_s(headers.get("retry-after"))
