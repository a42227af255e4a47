"""What a client's headers and silence may cost a real `vidrelay serve`, over raw sockets: a
header block over 64 KB or 100 fields is a 431, headers not in within the header timeout and a
body from which no byte arrives within the stall timeout get the connection closed. The timeouts
are set to 1 s here; the sockets wait up to 30 s, so a server that never closes fails the test."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import ServerProcess

PATIENCE_S = 30.0  # how long a socket waits for the server: far beyond every timeout set here


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = ServerProcess(
        Path(tmp_path_factory.mktemp("http_limits")) / "data",
        header_timeout_s="1",
        body_stall_timeout_s="1",
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()
    assert "Traceback" not in process.log_path.read_text(), "the server logged an error"


def connect(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=PATIENCE_S)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a timeout fails the test)."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def request_head(*fields: str, method: str = "GET", path: str = "/healthz") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *fields, "", ""]
    return "\r\n".join(lines).encode()


@pytest.mark.parametrize(
    "fields",
    [
        [f"X-Pad-{i}: {'a' * 4000}" for i in range(25)],  # 100 KB in 25 fields
        [f"X-Pad: {'a' * 100_000}"],  # 100 KB in one field
    ],
    ids=["many-fields", "one-field"],
)
def test_a_100_kb_header_block_is_a_431_and_the_connection_closed(
    server: ServerProcess, fields: list[str]
) -> None:
    with connect(server) as sock:
        sock.sendall(request_head(*fields))
        response = read_until_closed(sock)
    assert status_of(response) == 431
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"connection: close" in head.lower()
    error = json.loads(body)["error"]
    assert error["code"] == "request_headers_too_large" and "65536" in error["message"]


def test_a_header_block_that_never_ends_is_a_431_once_past_the_limit(
    server: ServerProcess,
) -> None:
    """The parser holds an unfinished header in memory: it is refused as soon as it is too big."""
    with connect(server) as sock:
        sock.sendall(request_head()[:-2] + b"X-Pad: ")
        for _ in range(20):
            sock.sendall(b"a" * 8192)
        response = read_until_closed(sock)
    assert status_of(response) == 431


def test_more_than_100_header_fields_is_a_431_and_100_are_served(server: ServerProcess) -> None:
    with connect(server) as sock:
        sock.sendall(request_head(*(f"X-Field-{i}: 1" for i in range(101))))
        assert status_of(read_until_closed(sock)) == 431
    with connect(server) as sock:
        fields = [f"X-Field-{i}: {'b' * 500}" for i in range(98)]  # 100 with Host, Connection
        sock.sendall(request_head(*fields, "Connection: close"))
        assert status_of(read_until_closed(sock)) == 200


@pytest.mark.parametrize(
    "sent",
    [b"", b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"],
    ids=["nothing", "half-a-header-block"],
)
def test_a_client_whose_headers_do_not_arrive_is_disconnected(
    server: ServerProcess, sent: bytes
) -> None:
    with connect(server) as sock:
        sock.sendall(sent)
        assert read_until_closed(sock) == b""


def test_a_kept_alive_connection_whose_next_headers_stall_is_disconnected(
    server: ServerProcess,
) -> None:
    with connect(server) as sock:
        sock.sendall(request_head())
        received = b""
        while b"\r\n\r\n" not in received or not received.endswith(b"}"):
            received += sock.recv(65536)
        assert status_of(received) == 200
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert read_until_closed(sock) == b""


def test_headers_trickled_a_byte_at_a_time_are_cut_off(server: ServerProcess) -> None:
    """The header timeout bounds the whole header block, not the gap between bytes."""
    closed = False
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        deadline = time.monotonic() + PATIENCE_S
        while not closed and time.monotonic() < deadline:
            try:
                sock.sendall(b"X")
                if select.select([sock], [], [], 0.1)[0]:
                    closed = sock.recv(1) == b""
            except (BrokenPipeError, ConnectionResetError):
                closed = True
    assert closed, "the server kept the connection open"


def test_a_body_that_stalls_is_cut_with_a_408_and_one_that_trickles_is_read(
    server: ServerProcess,
) -> None:
    key = server.create_key("alice", "5")
    body = b'{"prompt": "a paper boat on a rainy street"}'
    head = request_head(
        f"Authorization: Bearer {key}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
        method="POST",
        path="/v1/videos",
    )
    with connect(server) as sock:
        sock.sendall(head + body[:10])
        response = read_until_closed(sock)
    assert status_of(response) == 408
    assert json.loads(response.partition(b"\r\n\r\n")[2])["error"]["code"] == "request_timeout"

    with connect(server) as sock:  # every gap shorter than the stall timeout, the whole longer
        sock.sendall(head)
        for start in range(0, len(body), 8):
            time.sleep(0.3)
            sock.sendall(body[start : start + 8])
        response = read_until_closed(sock)
    assert status_of(response) == 200, response
