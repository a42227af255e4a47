"""The outbound guard: user-given URLs reach public addresses only, whatever the spelling, the DNS
answer or the redirects, unless the operator allow-lists them. Real sockets, on loopback only."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any

import httpx
import pytest

from vidrelay.domain.errors import InvalidRequest
from vidrelay.outbound import (
    OutboundError,
    OutboundRefused,
    check_url_at_create,
    guarded_request,
    is_refused_address,
)

LOOPBACK_CIDR = ["127.0.0.0/8"]

# --- create time -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://0x7f000001/",
        "http://0x7f.1/",
        "http://2130706433/",
        "http://0177.0.0.1/",
        "http://127.1/",
        "http://127.0.0.1./",
        "http://0/",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://198.18.0.1/",
        "http://[::1]/",
        "http://[::]/",
        "http://[::7f00:1]/",
        "http://[fc00::1]/",
        "http://[ff02::1]/",
        "http://[fe80::1%25eth0]/",
        "http://[64:ff9b::a00:1]/",
        "http://[2002:a9fe:a9fe::]/",
        "http://localhost/",
        "http://LOCALHOST./",
        "http://app.localhost:8080/",
        "http://1.2.3.4.5/",
        "http://user:pw@example.com/",
        "ftp://example.com/",
        "http:///no-host",
    ],
)
def test_create_time_check_refuses_every_spelling_of_a_non_public_target(url: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_url_at_create(url, param="callback_url", allowlist=[])
    assert refused.value.param == "callback_url"
    assert refused.value.message.startswith("callback_url: ")


def test_credentials_in_a_url_are_refused_with_the_reason() -> None:
    with pytest.raises(InvalidRequest) as refused:
        check_url_at_create("https://user:hunter2@example.com/", param="callback_url", allowlist=[])
    assert "credentials" in refused.value.message
    assert "hunter2" not in refused.value.message


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/hook",
        "http://does-not-resolve.invalid/",
        "http://8.8.8.8/",
        "https://[2606:4700:4700::1111]/",
        "https://bücher.example/",
    ],
)
def test_create_time_check_passes_public_targets_without_resolving_them(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_dns(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("create-time checks must not resolve host names")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    check_url_at_create(url, param="callback_url", allowlist=[])


@pytest.mark.parametrize(
    ("url", "allowlist"),
    [
        ("http://127.0.0.1:8000/hook", ["127.0.0.1"]),
        ("http://127.0.0.1/", ["127.0.0.0/8"]),
        ("http://0x7f000001/", ["127.0.0.0/8"]),
        ("http://[::ffff:127.0.0.1]/", ["127.0.0.0/8"]),
        ("http://localhost:9/", ["localhost"]),
        ("http://LOCALHOST./", [" localhost "]),
    ],
)
def test_an_allow_listed_host_or_network_passes_at_create_time(
    url: str, allowlist: list[str]
) -> None:
    check_url_at_create(url, param="callback_url", allowlist=allowlist)


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", True),
        ("169.254.169.254", True),
        ("100.100.100.100", True),
        ("192.0.2.1", True),
        ("239.1.1.1", True),
        ("255.255.255.255", True),
        ("::ffff:10.0.0.1", True),
        ("64:ff9b::7f00:1", True),
        ("2002:c0a8:101::1", True),
        ("2001:db8::1", True),
        ("fec0::1", True),
        ("8.8.8.8", False),
        ("::ffff:8.8.8.8", False),
        ("64:ff9b::808:808", False),
        ("2606:4700:4700::1111", False),
    ],
)
def test_only_public_unicast_addresses_are_allowed(address: str, refused: bool) -> None:
    assert is_refused_address(ip_address(address)) is refused


# --- a loopback HTTP server, and DNS under the test's control ---------------------------------


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


Responder = Callable[[Received], Awaitable[bytes]]


def http_response(
    status: int = 200,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    *,
    declare_length: bool = True,
) -> bytes:
    lines = [f"HTTP/1.1 {status} X", "Connection: close"]
    if declare_length:
        lines.append(f"Content-Length: {len(body)}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class LoopbackServer:
    """Minimal HTTP/1.1 on 127.0.0.1, one request per connection, recording what reaches it."""

    respond: Responder
    port: int = 0
    connections: int = 0
    received: list[Received] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _handlers: set[asyncio.Task[Any]] = field(default_factory=set)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for handler in self._handlers:
            handler.cancel()
        await self._server.wait_closed()

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        self.connections += 1
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *header_lines = head.strip().split("\r\n")
            method, path, _ = request_line.split(" ", 2)
            headers = {
                name.strip().lower(): value.strip()
                for name, value in (line.split(":", 1) for line in header_lines)
            }
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            received = Received(method, path, headers, body)
            self.received.append(received)
            writer.write(await self.respond(received))
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self._handlers.discard(handler)


ServerFactory = Callable[[Responder], Awaitable[LoopbackServer]]


@pytest.fixture
async def serve() -> AsyncIterator[ServerFactory]:
    servers: list[LoopbackServer] = []

    async def start(respond: Responder) -> LoopbackServer:
        server = LoopbackServer(respond)
        await server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.stop()


@dataclass
class FakeDns:
    records: dict[str, str] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)


@pytest.fixture
async def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    """Names in `records` resolve to the given IPv4 address without DNS; every lookup counts."""
    loop = asyncio.get_running_loop()
    real_getaddrinfo = loop.getaddrinfo
    dns = FakeDns()

    async def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        dns.lookups.append(host)
        if host in dns.records:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (dns.records[host], port))]
        return await real_getaddrinfo(host, port, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return dns


def forbid_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    async def send(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a refused target must not be connected to")

    monkeypatch.setattr(httpx.AsyncClient, "send", send)


async def ok(received: Received) -> bytes:
    return http_response(200, b"hello", {"Content-Type": "text/plain"})


# --- request time ----------------------------------------------------------------------------


async def test_an_allow_listed_loopback_receiver_is_reached(serve: ServerFactory) -> None:
    server = await serve(ok)
    response = await guarded_request(
        "POST",
        server.url("/hook"),
        allowlist=LOOPBACK_CIDR,
        headers={"Content-Type": "application/json"},
        content=b"{}",
    )
    assert response.status_code == 200
    assert response.body == b"hello"
    assert response.headers["content-type"] == "text/plain"
    assert response.url == server.url("/hook")
    [received] = server.received
    assert (received.method, received.path, received.body) == ("POST", "/hook", b"{}")


async def test_loopback_is_refused_before_connecting_unless_allow_listed(
    serve: ServerFactory,
) -> None:
    server = await serve(ok)
    with pytest.raises(OutboundRefused, match="loopback"):
        await guarded_request("GET", server.url("/hook"), allowlist=[])
    assert server.connections == 0


async def test_a_redirect_to_an_address_that_is_not_allow_listed_is_refused(
    serve: ServerFactory,
) -> None:
    async def redirect_away(received: Received) -> bytes:
        return http_response(302, headers={"Location": f"http://127.0.0.2:{server.port}/x"})

    server = await serve(redirect_away)
    with pytest.raises(OutboundRefused, match="redirect"):
        await guarded_request(
            "GET", server.url("/start", host="localhost"), allowlist=["localhost"]
        )
    assert [received.path for received in server.received] == ["/start"]


async def test_a_name_that_resolves_to_a_private_address_is_refused_without_connecting(
    fake_dns: FakeDns, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_dns.records["evil.test"] = "10.1.2.3"
    forbid_connections(monkeypatch)
    with pytest.raises(OutboundRefused, match="private"):
        await guarded_request("GET", "http://evil.test/hook", allowlist=[])
    assert fake_dns.lookups == ["evil.test"]


async def test_the_connection_is_pinned_to_the_checked_address_with_the_original_host(
    serve: ServerFactory, fake_dns: FakeDns
) -> None:
    fake_dns.records["pinned.test"] = "127.0.0.1"
    server = await serve(ok)
    response = await guarded_request(
        "GET", server.url("/hook", host="pinned.test"), allowlist=LOOPBACK_CIDR
    )
    assert response.status_code == 200
    assert response.url == server.url("/hook", host="pinned.test")
    [received] = server.received
    assert received.headers["host"] == f"pinned.test:{server.port}"
    assert fake_dns.lookups.count("pinned.test") == 1  # the client did not look it up again


async def test_a_server_that_never_answers_fails_within_the_overall_timeout(
    serve: ServerFactory,
) -> None:
    async def never(received: Received) -> bytes:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    server = await serve(never)
    with pytest.raises(OutboundError, match="no complete response"):
        await guarded_request("GET", server.url(), allowlist=LOOPBACK_CIDR, timeout_s=0.3)


@pytest.mark.parametrize("declare_length", [True, False])
async def test_a_body_larger_than_the_limit_fails(
    serve: ServerFactory, declare_length: bool
) -> None:
    async def big(received: Received) -> bytes:
        return http_response(200, b"x" * 5000, declare_length=declare_length)

    server = await serve(big)
    with pytest.raises(OutboundError, match="larger than 1000 bytes"):
        await guarded_request("GET", server.url(), allowlist=LOOPBACK_CIDR, max_bytes=1000)


@pytest.mark.parametrize(
    ("status", "method", "body"), [(303, "GET", b""), (302, "GET", b""), (307, "POST", b"{}")]
)
async def test_redirects_are_followed_like_a_browser(
    serve: ServerFactory, status: int, method: str, body: bytes
) -> None:
    async def redirect_once(received: Received) -> bytes:
        if received.path == "/start":
            return http_response(status, headers={"Location": "/final"})
        return await ok(received)

    server = await serve(redirect_once)
    response = await guarded_request(
        "POST", server.url("/start"), allowlist=LOOPBACK_CIDR, content=b"{}"
    )
    assert response.status_code == 200
    assert response.url == server.url("/final")
    final = server.received[-1]
    assert (final.path, final.method, final.body) == ("/final", method, body)


async def test_credentials_are_not_forwarded_to_another_origin(
    serve: ServerFactory, fake_dns: FakeDns
) -> None:
    fake_dns.records["other.test"] = "127.0.0.1"

    async def redirect_to_other_host(received: Received) -> bytes:
        if received.path == "/start":
            return http_response(307, headers={"Location": server.url("/b", host="other.test")})
        return await ok(received)

    server = await serve(redirect_to_other_host)
    await guarded_request(
        "GET",
        server.url("/start"),
        allowlist=LOOPBACK_CIDR,
        headers={"Authorization": "Bearer secret"},
    )
    first, second = server.received
    assert first.headers["authorization"] == "Bearer secret"
    assert "authorization" not in second.headers
    assert second.headers["host"] == f"other.test:{server.port}"


async def test_too_many_redirects_fail(serve: ServerFactory) -> None:
    async def loop_forever(received: Received) -> bytes:
        return http_response(302, headers={"Location": "/again"})

    server = await serve(loop_forever)
    with pytest.raises(OutboundError, match="more than 2 redirects"):
        await guarded_request("GET", server.url(), allowlist=LOOPBACK_CIDR, max_redirects=2)
    assert len(server.received) == 3


async def test_an_unreachable_port_is_an_outbound_error(serve: ServerFactory) -> None:
    server = await serve(ok)
    await server.stop()
    with pytest.raises(OutboundError, match="could not connect"):
        await guarded_request("GET", server.url(), allowlist=LOOPBACK_CIDR)
