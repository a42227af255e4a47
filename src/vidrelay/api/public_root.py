"""The root of the links a response carries (`video_url`).

`VIDRELAY_PUBLIC_URL` when set; otherwise the request's own base URL, whose host comes from the
client's `Host` header. That root ends up in links and in the status cache's keys, so a `Host`
that is not a plain `host[:port]` of bounded length is refused rather than echoed or stored.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from starlette.datastructures import URL
from starlette.requests import Request

from vidrelay.domain.errors import InvalidRequest
from vidrelay.settings import Settings

MAX_HOST_HEADER_LENGTH = 261  # a 253-character DNS name, ':' and a five-digit port
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?"
_HOST_HEADER = re.compile(
    rf"(?P<host>{_LABEL}(?:\.{_LABEL})*\.?|\[(?P<ipv6>[0-9A-Fa-f:.]+)\])(?::(?P<port>[0-9]{{1,5}}))?"
)


def public_root(request: Request, settings: Settings) -> str:
    if settings.public_url:
        return settings.public_url
    scope = request.scope
    host: str | None = None
    for name, value in scope["headers"]:
        if name == b"host":
            host = value.decode("latin-1")
            break
    root_path = scope.get("app_root_path", scope.get("root_path", ""))
    return _request_root(scope["scheme"], host, root_path, scope.get("server"))


@lru_cache(maxsize=1024)
def _request_root(
    scheme: str, host: str | None, root_path: str, server: tuple[str, int | None] | None
) -> str:
    """The request's base URL, as Starlette's `request.base_url` spells it. Cached: a status
    poll asks for it every time, and a station sees few distinct hosts (a refused `Host` is
    never cached, since the exception leaves nothing behind)."""
    if host is not None and not is_valid_host_header(host):
        raise InvalidRequest(
            f"The Host header must be a host name or an IP address with an optional port, at "
            f"most {MAX_HOST_HEADER_LENGTH} characters.",
            param="Host",
            code="invalid_host",
        )
    headers = [] if host is None else [(b"host", host.encode("latin-1"))]
    path = root_path if root_path.endswith("/") else root_path + "/"
    scope = {
        "type": "http",
        "scheme": scheme,
        "server": server,
        "root_path": root_path,
        "path": path,
        "query_string": b"",
        "headers": headers,
    }
    return str(URL(scope=scope))


def is_valid_host_header(value: str) -> bool:
    if len(value) > MAX_HOST_HEADER_LENGTH:
        return False
    match = _HOST_HEADER.fullmatch(value)
    if match is None:
        return False
    port = match.group("port")
    if port is not None and not 0 < int(port) <= 65535:
        return False
    ipv6 = match.group("ipv6")
    if ipv6 is not None:
        try:
            ipaddress.IPv6Address(ipv6)
        except ValueError:
            return False
    return True
