"""The one guard for every outbound request to a user-given URL (SSRF protection).

Used for `callback_url`, tenant webhook endpoints, `input_reference[image_url]` and
`character_url`. A user-given URL may only reach public unicast addresses, unless the operator
allow-lists its host name or network (`VIDRELAY_OUTBOUND_ALLOWLIST`, for local receivers in
development and tests).

Two entry points share one set of rules:
- `check_url_at_create` runs when a URL is accepted, without DNS (a name that does not resolve
  yet is not the client's mistake). It refuses what is wrong whatever DNS says: other schemes,
  credentials, `localhost` names, and IP literals in refused ranges in every spelling the HTTP
  client or the resolver would accept (`2130706433`, `0x7f.1`, `127.1`, `[::ffff:7f00:1]`, ...).
- `guarded_request` runs when the request is made. It resolves the host, checks every address,
  and connects to a checked address itself, so no second lookup by the client can be rebound to
  another address; `Host`, TLS SNI and certificate checks keep the original name. It follows
  redirects itself, checking each hop the same way, and caps total time and body size.
"""

from __future__ import annotations

import asyncio
import functools
import re
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

import httpx

from vidrelay.domain.errors import InvalidRequest

__all__ = [
    "GuardedResponse",
    "OutboundError",
    "OutboundRefused",
    "check_url_at_create",
    "guarded_request",
    "is_refused_address",
]

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

_REFUSED_IPV4 = tuple(
    IPv4Network(network)
    for network in (
        "0.0.0.0/8",  # "this network", incl. the unspecified address
        "10.0.0.0/8",  # RFC 1918
        "100.64.0.0/10",  # shared address space (CGNAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, incl. cloud metadata 169.254.169.254
        "172.16.0.0/12",  # RFC 1918
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",  # RFC 1918
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, incl. broadcast
    )
)
# Outside 2000::/3 nothing is public unicast: ::, ::1, IPv4-compatible ::/96, fc00::/7,
# fe80::/10, fec0::/10, ff00::/8, 100::/64, 64:ff9b:1::/48 are all refused by that one rule.
_GLOBAL_UNICAST_IPV6 = IPv6Network("2000::/3")
_REFUSED_IPV6 = tuple(
    IPv6Network(network)
    for network in (
        "2001::/23",  # IETF protocol assignments: Teredo, benchmarking, ORCHID
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
    )
)
_NAT64 = IPv6Network("64:ff9b::/96")
_SHARED_ADDRESS_SPACE = IPv4Network("100.64.0.0/10")
_LOCALHOST_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization")
_BODY_HEADERS = ("content-type", "content-length", "content-encoding", "transfer-encoding")


class OutboundRefused(Exception):
    """The URL, or a redirect, points where user-given URLs may not go. Says why; no secrets."""


class OutboundError(Exception):
    """The request failed: network, timeout, body too large, too many redirects. No secrets."""


@dataclass(frozen=True)
class GuardedResponse:
    """A complete response; `url` is the final URL after redirects, with its original host."""

    status_code: int
    headers: httpx.Headers
    body: bytes
    url: str


def is_refused_address(address: IPAddress) -> bool:
    """True for anything but a public unicast address.

    IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4) are judged by that address, since
    that is where a translating network delivers them. `is_global` alone is not enough: it calls
    multicast, some special IPv4 blocks and most non-unicast IPv6 space global on Python 3.11.
    """
    if isinstance(address, IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_refused_address(embedded)
        if address not in _GLOBAL_UNICAST_IPV6 or _in_any(address, _REFUSED_IPV6):
            return True
    elif _in_any(address, _REFUSED_IPV4):
        return True
    return not address.is_global


def check_url_at_create(url: str, *, param: str, allowlist: Sequence[str]) -> None:
    """Refuse, as a 400 naming `param`, a URL that can never be a valid outbound target.

    No DNS here: a host name is judged when the request is made (`guarded_request`).
    """
    try:
        _parse_target(url, _Allowlist.parse(allowlist))
    except OutboundRefused as refusal:
        raise InvalidRequest(f"{param}: {refusal}.", param=param) from refusal


async def guarded_request(
    method: str,
    url: str,
    *,
    allowlist: Sequence[str],
    headers: Mapping[str, str] | None = None,
    content: bytes | None = None,
    timeout_s: float = 10.0,
    max_bytes: int = 20 * 1024 * 1024,
    max_redirects: int = 3,
) -> GuardedResponse:
    """Send a request to a user-given URL, connecting only to checked addresses.

    `timeout_s` bounds the whole exchange (resolution, every hop, the body). Raises
    `OutboundRefused` before any connection to a refused address, `OutboundError` otherwise.
    Asks for an identity encoding unless `headers` say otherwise, so `max_bytes` bounds memory.
    """
    rules = _Allowlist.parse(allowlist)
    try:
        async with asyncio.timeout(timeout_s):
            return await _follow(
                method.upper(), url, rules, headers or {}, content, max_bytes, max_redirects
            )
    except TimeoutError as error:
        raise OutboundError(f"no complete response within {timeout_s:g} s") from error
    except httpx.HTTPError as error:
        raise OutboundError(f"the request failed ({type(error).__name__})") from error


@dataclass(frozen=True)
class _Allowlist:
    hosts: frozenset[str]
    networks: tuple[IPNetwork, ...]

    @classmethod
    def parse(cls, entries: Sequence[str]) -> _Allowlist:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in (e.strip().lower() for e in entries):
            if not entry:
                continue
            try:
                networks.append(ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(entry.removesuffix("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows_address(self, address: IPAddress) -> bool:
        embedded = _embedded_ipv4(address) if isinstance(address, IPv6Address) else None
        return _in_any(address, self.networks) or (
            embedded is not None and _in_any(embedded, self.networks)
        )


@dataclass(frozen=True)
class _Target:
    url: httpx.URL
    host: str  # ASCII (IDNA) and lower case, as in `Host` and TLS
    port: int
    literal: IPAddress | None  # what an IP-literal host means, in whatever spelling
    allowed_by_name: bool


def _parse_target(url: str | httpx.URL, rules: _Allowlist) -> _Target:
    """Check everything that needs no DNS. httpx parses, since httpx is what connects."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise OutboundRefused("the URL is not valid") from error
    if parsed.scheme not in _DEFAULT_PORTS:
        raise OutboundRefused("the URL must use http or https")
    host = parsed.raw_host.decode("ascii").lower()
    if not host:
        raise OutboundRefused("the URL has no host")
    if parsed.userinfo:
        raise OutboundRefused(
            "the URL must not contain a user name or password (user:password@host): "
            "credentials in a URL end up in logs and travel in clear over http; "
            "authenticate with a header or a secret in the path instead"
        )
    literal = _ip_literal(host)
    name = host.removesuffix(".")
    allowed_by_name = literal is None and name in rules.hosts
    if literal is not None:
        if not rules.allows_address(literal) and is_refused_address(literal):
            raise OutboundRefused(_refused_message("the URL points to", literal))
    elif not allowed_by_name and (name in _LOCALHOST_NAMES or name.endswith(".localhost")):
        raise OutboundRefused("the URL points to localhost; only public hosts are allowed")
    port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
    return _Target(parsed, host, port, literal, allowed_by_name)


def _ip_literal(host: str) -> IPAddress | None:
    """The address a host means if it is an IP literal, or None for a host name.

    A host whose last label is a number is an IPv4 address in the legacy notation that
    `inet_aton`, resolvers and WHATWG URL parsers accept (`2130706433`, `0x7f.1`, `0177.0.0.1`,
    `127.1`), or else invalid: no real host name ends in a number.
    """
    if ":" in host:
        if "%" in host:
            raise OutboundRefused("the URL's IPv6 address must not carry a zone id")
        try:
            return IPv6Address(host)
        except ValueError as error:
            raise OutboundRefused("the URL's IPv6 address is not valid") from error
    if not _HOST_NAME.fullmatch(host):
        raise OutboundRefused("the URL's host is not a valid host name")
    labels = host.removesuffix(".").split(".")
    if not _NUMERIC_LABEL.fullmatch(labels[-1]):
        return None
    address = _legacy_ipv4(labels)
    if address is None:
        raise OutboundRefused("the URL's host is neither a host name nor a valid IPv4 address")
    return address


def _legacy_ipv4(labels: list[str]) -> IPv4Address | None:
    """The WHATWG / `inet_aton` IPv4 parser: 1 to 4 parts, each decimal, 0-octal or 0x-hex."""
    if len(labels) > 4:
        return None
    numbers: list[int] = []
    for label in labels:
        try:
            if label.startswith("0x"):
                numbers.append(int(label[2:] or "0", 16))
            elif len(label) > 1 and label.startswith("0"):
                numbers.append(int(label[1:], 8))
            else:
                numbers.append(int(label, 10))
        except ValueError:
            return None
    *leading, last = numbers
    if any(number > 255 for number in leading) or last >= 256 ** (4 - len(leading)):
        return None
    value = last + sum(number << (8 * (3 - index)) for index, number in enumerate(leading))
    return IPv4Address(value)


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def _in_any(address: IPAddress, networks: Sequence[IPNetwork]) -> bool:
    return any(address in network for network in networks)


def _refused_message(subject: str, address: IPAddress) -> str:
    judged: IPAddress = address
    if isinstance(address, IPv6Address):
        judged = _embedded_ipv4(address) or address
    if judged.is_loopback:
        kind = "a loopback"
    elif judged.is_link_local:
        kind = "a link-local"
    elif judged.is_multicast:
        kind = "a multicast"
    elif judged.is_unspecified:
        kind = "an unspecified"
    elif judged.is_private or judged in _SHARED_ADDRESS_SPACE:
        kind = "a private"
    else:
        kind = "a reserved"
    return f"{subject} {kind} address; only public addresses are allowed"


async def _follow(
    method: str,
    url: str,
    rules: _Allowlist,
    headers: Mapping[str, str],
    content: bytes | None,
    max_bytes: int,
    max_redirects: int,
) -> GuardedResponse:
    target = _parse_target(url, rules)
    request_headers = httpx.Headers(headers)
    request_headers.setdefault("accept-encoding", "identity")
    redirects = 0
    while True:
        addresses = await _checked_addresses(target, rules)
        response = await _send_pinned(
            method, target, addresses, request_headers, content, max_bytes
        )
        location = response.headers.get("location")
        if response.status_code not in _REDIRECT_STATUSES or location is None:
            return response
        if redirects == max_redirects:
            raise OutboundError(f"more than {max_redirects} redirects")
        redirects += 1
        try:
            next_target = _parse_target(target.url.join(location), rules)
        except (httpx.InvalidURL, OutboundRefused) as error:
            raise OutboundRefused(f"a redirect was refused: {error}") from error
        if _origin(next_target) != _origin(target):
            for name in _CREDENTIAL_HEADERS:
                request_headers.pop(name, None)
        method, content = _redirected_method(response.status_code, method, content)
        if content is None:
            for name in _BODY_HEADERS:
                request_headers.pop(name, None)
        target = next_target


def _redirected_method(status: int, method: str, content: bytes | None) -> tuple[str, bytes | None]:
    """What browsers do: 303 becomes GET, so does a POST on 301/302; 307/308 keep everything."""
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        return "GET", None
    return method, content


def _origin(target: _Target) -> tuple[str, str, int]:
    return target.url.scheme, target.host, target.port


async def _checked_addresses(target: _Target, rules: _Allowlist) -> list[IPAddress]:
    """Resolve once and check every address: one refused address refuses the host."""
    if target.literal is not None:
        return [target.literal]  # checked by `_parse_target`
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            target.host, target.port, type=socket.SOCK_STREAM
        )
    except OSError as error:
        raise OutboundError("the host name could not be resolved") from error
    addresses = list(dict.fromkeys(ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise OutboundError("the host name could not be resolved")
    if not target.allowed_by_name:
        for address in addresses:
            if not rules.allows_address(address) and is_refused_address(address):
                raise OutboundRefused(_refused_message("the host name resolves to", address))
    return addresses


async def _send_pinned(
    method: str,
    target: _Target,
    addresses: list[IPAddress],
    headers: httpx.Headers,
    content: bytes | None,
    max_bytes: int,
) -> GuardedResponse:
    """One exchange with the first checked address that accepts a connection.

    The request URL names the address, so the client never resolves anything; `Host` and
    `sni_hostname` (which httpcore also uses to verify the certificate) carry the original host.
    A fresh client per hop means no pooled connection is reused under another name.
    """
    pinned_headers = headers.copy()
    pinned_headers["host"] = target.url.netloc.decode("ascii")
    extensions = {"sni_hostname": target.host.removesuffix(".")}
    if target.literal is not None:
        extensions = {"sni_hostname": str(target.literal)}
    connect_error: httpx.ConnectError | None = None
    async with httpx.AsyncClient(
        verify=_tls_context(), trust_env=False, follow_redirects=False, timeout=None
    ) as client:
        for address in addresses:
            try:
                pinned_url = target.url.copy_with(host=str(address))
            except httpx.InvalidURL as error:
                raise OutboundError("the resolved address cannot be used") from error
            request = client.build_request(
                method, pinned_url, headers=pinned_headers, content=content, extensions=extensions
            )
            try:
                response = await client.send(request, stream=True)
            except httpx.ConnectError as error:
                connect_error = error
                continue
            try:
                body = await _read_capped(response, max_bytes)
            finally:
                await response.aclose()
            return GuardedResponse(response.status_code, response.headers, body, str(target.url))
    raise OutboundError("could not connect to the host") from connect_error


async def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    too_large = f"the response body is larger than {max_bytes} bytes"
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise OutboundError(too_large)
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_bytes:
            raise OutboundError(too_large)
        chunks.append(chunk)
    return b"".join(chunks)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Built once: loading the CA bundle blocks for a while. Honours SSL_CERT_FILE/DIR."""
    return httpx.create_ssl_context(trust_env=True)
