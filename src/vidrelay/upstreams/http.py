"""The HTTP plumbing every upstream adapter shares, written once (DESIGN.md §6).

An adapter is one channel's view of a provider: its package maps requests, statuses and errors
(the parts that differ); `UpstreamHttp` does what is the same everywhere:

- one connection pool per channel, over an injectable httpx transport (`httpx.MockTransport`
  in unit tests, the real network otherwise);
- the channel's credentials go to the channel's own origin only, never to a CDN a status
  names (`same_origin`); a redirect out of the origin loses them too (httpx drops
  `Authorization`, and `download` asks for auth headers per URL);
- a network failure becomes an `UpstreamError` of kind UNAVAILABLE described by its class only
  (httpx's own text may name the host);
- a download streams into a temporary file beside its destination, checks the first bytes are
  what was asked for (a video, an image, not an HTML error page) and that the transfer is
  complete, then renames: a broken transfer never leaves a partial asset behind;
- an error answer becomes an `UpstreamError` with a generic text when the provider gave none,
  and `Retry-After` read when it says to slow down;
- every message is cleaned of the channel's URL, host, keys and the ids given (`clean`).

Example (an adapter's submit):

    response = await self._http.send("POST", self._http.url("/v1/tasks"), key, json=body)
    if not response.is_success:
        raise self._http.error(response, message=provider_message(response), code=code)
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx

from vidrelay.retry_after import retry_after_s
from vidrelay.upstreams.base import FailureKind, UpstreamError, failure_kind_for_status
from vidrelay.upstreams.messages import clean_upstream_message, key_secrets

AuthHeaders = Callable[[str], dict[str, str]]
"""The headers that carry a credential (a key, or an `ACCESS:SECRET` pair) to the provider."""

SNIFF_BYTES = 12
_ISO_MEDIA_BOXES = frozenset({b"ftyp", b"styp", b"moov", b"mdat", b"free", b"skip", b"wide"})
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF8")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def looks_like_video(head: bytes) -> bool:
    """An ISO media file (MP4, MOV) starts with a box; an error page or JSON does not."""
    return head[4:8] in _ISO_MEDIA_BOXES


def looks_like_image(head: bytes) -> bool:
    return head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


class UnexpectedContent(Exception):
    """A 200 whose body is not what was asked for (an HTML error page, JSON, the video again)."""


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


def transport_error(
    error: httpx.HTTPError | httpx.StreamError, action: str = "request"
) -> UpstreamError:
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


def generic_message(kind: FailureKind, status: int) -> str:
    if kind is FailureKind.AUTH:
        return f"The upstream refused the key ({status})."
    if kind is FailureKind.RATE_LIMITED:
        return f"The upstream is rate limiting requests ({status})."
    if kind is FailureKind.UNAVAILABLE:
        return f"The upstream is unavailable ({status})."
    return f"The upstream refused the request ({status})."


class UpstreamHttp:
    """One channel's connection pool, origin and secrets. `base_url` is the provider's API
    root; `auth_headers` turns a credential into headers (Bearer by default)."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: httpx.Timeout,
        limits: httpx.Limits | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        auth_headers: AuthHeaders = bearer,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.base = httpx.URL(self.base_url)
        self._origin = origin(self.base)
        self._auth_headers = auth_headers
        self._hidden = (self.base_url, self.base.netloc.decode("ascii"), self.base.host)
        self._credential_headers: set[str] = set()  # every header a credential went out in
        self.client = httpx.AsyncClient(
            timeout=timeout,
            limits=limits or httpx.Limits(max_connections=64, max_keepalive_connections=64),
            transport=transport,
            event_hooks={"request": [self._keep_credentials_on_origin]},
        )

    def url(self, path: str) -> str:
        return self.base_url + path

    def same_origin(self, url: str | httpx.URL) -> bool:
        return origin(httpx.URL(url)) == self._origin

    def headers_for(self, url: str | httpx.URL, key: str) -> dict[str, str]:
        """The credential's headers for the channel's own origin; nothing for anywhere else."""
        if not key or not self.same_origin(url):
            return {}
        headers = self._auth_headers(key)
        self._credential_headers.update(name.lower() for name in headers)
        return headers

    async def _keep_credentials_on_origin(self, request: httpx.Request) -> None:
        """httpx drops only `Authorization` when a redirect leaves the origin; a provider's
        own header (`x-goog-api-key`) would follow it to storage. Every request of a redirect
        chain passes here, so no credential header ever leaves the channel's origin."""
        if not self.same_origin(request.url):
            for name in self._credential_headers & {n.lower() for n in request.headers}:
                del request.headers[name]

    async def send(self, method: str, url: str, key: str, **options: Any) -> httpx.Response:
        """One request, its credential attached when `url` is the channel's own origin."""
        headers = {**options.pop("headers", {}), **self.headers_for(url, key)}
        try:
            return await self.client.request(method, url, headers=headers, **options)
        except httpx.TransportError as error:
            raise transport_error(error) from None

    async def download(
        self,
        url: str | httpx.URL,
        destination: Path,
        key: str,
        looks_right: Callable[[bytes], bool],
        params: dict[str, str] | None = None,
    ) -> httpx.Response | None:
        """Stream `url` into `destination` (atomically); None once saved, else the error reply
        (its body read). Raises `UnexpectedContent` for a 200 that is not what `looks_right`
        expects, an UNAVAILABLE `UpstreamError` for a broken or short transfer."""
        temporary = destination.with_name(f".{destination.name}.{secrets.token_hex(6)}.part")
        try:
            async with self.client.stream(
                "GET", url, params=params, headers=self.headers_for(url, key), follow_redirects=True
            ) as response:
                if not response.is_success:
                    await response.aread()
                    return response
                destination.parent.mkdir(parents=True, exist_ok=True)
                await _save(response, temporary, looks_right)
            temporary.replace(destination)
        except (httpx.TransportError, httpx.StreamError) as error:
            raise transport_error(error, "transfer") from None
        finally:
            temporary.unlink(missing_ok=True)
        return None

    def error(
        self,
        response: httpx.Response,
        *,
        message: str | None = None,
        code: str | None = None,
        kind: FailureKind | None = None,
        hide: Iterable[str] = (),
        key: str = "",
    ) -> UpstreamError:
        """An error answer as an `UpstreamError`: the provider's own words (cleaned of `hide`
        and the channel's secrets) or a generic text; `Retry-After` when it says to wait."""
        status = response.status_code
        kind = kind or failure_kind_for_status(status)
        text = self.clean(message, hide, key=key) if message else generic_message(kind, status)
        slow_down = kind is FailureKind.RATE_LIMITED or status == 503
        retry_after = retry_after_s(response.headers.get("retry-after")) if slow_down else None
        return UpstreamError(
            text, code=code or f"upstream_{kind.value}", kind=kind, retry_after_s=retry_after
        )

    def clean(self, message: str, hide: Iterable[str] = (), *, key: str = "") -> str:
        """A provider's message fit for a client: no URL, host, credential (`key`, both
        halves of a pair) or id of ours (`hide`) in it."""
        return clean_upstream_message(message, [*self._hidden, *key_secrets(key), *hide])

    async def close(self) -> None:
        await self.client.aclose()


async def _save(
    response: httpx.Response, temporary: Path, looks_right: Callable[[bytes], bool]
) -> None:
    head = b""
    checked = False
    written = 0
    with temporary.open("wb") as file:  # small local writes; a thread hop per chunk costs more
        async for chunk in response.aiter_bytes():
            if not checked:
                head += chunk[:SNIFF_BYTES]
                if len(head) >= SNIFF_BYTES:
                    checked = True
                    if not looks_right(head):
                        raise UnexpectedContent()
            file.write(chunk)
            written += len(chunk)
    if not checked and not looks_right(head):
        raise UnexpectedContent()
    declared = response.headers.get("content-length", "")
    # On the wire `content-length` counts encoded bytes; a body handed over already read (an
    # injected transport) counts none downloaded: a transfer is short only if both fall short.
    if declared.isdigit() and max(response.num_bytes_downloaded, written) < int(declared):
        raise UpstreamError(
            "The upstream is unavailable: the transfer ended early.",
            code="upstream_unavailable",
            kind=FailureKind.UNAVAILABLE,
        )


def channel_http(
    base_url: str,
    *,
    timeout_s: float,
    max_connections: int,
    transport: httpx.AsyncBaseTransport | None,
    auth_headers: AuthHeaders = bearer,
) -> UpstreamHttp:
    """The pool of one channel of a request/answer protocol: `timeout_s` for each answer (a
    connection at most 10 s), up to `max_connections` kept alive."""
    return UpstreamHttp(
        base_url,
        timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        transport=transport,
        auth_headers=auth_headers,
    )


def required_json_object(response: httpx.Response) -> dict[str, Any]:
    """The body as a JSON object; an answer that is not one is the upstream misbehaving
    (UNAVAILABLE: another try, or another channel, may do better)."""
    body = json_object(response)
    if body is None:
        raise UpstreamError(
            f"The upstream answered {response.status_code} with a body that is not JSON.",
            code="upstream_bad_response",
            kind=FailureKind.UNAVAILABLE,
        )
    return body


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The body as a JSON object, or None (not JSON, or not an object)."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None
