"""moto's real S3 server on a free port, a bucket in it, and a slow TCP proxy in front of it
(so a test can catch an upload halfway)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from tests.e2e.server import free_port

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
REGION = "us-east-1"


@dataclass
class S3Server:
    endpoint: str

    def client(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=REGION,
        )

    def new_bucket(self) -> str:
        name = "media-" + secrets.token_hex(4)
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        listed = self.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def read(self, bucket: str, key: str) -> bytes:
        body: bytes = self.client().get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def settings(
        self, bucket: str, prefix: str = "media", endpoint: str | None = None
    ) -> dict[str, Any]:
        """`Settings` keyword arguments for media in `bucket/prefix` on this server."""
        return {
            "media_url": f"s3://{bucket}/{prefix}",
            "s3_endpoint_url": endpoint or self.endpoint,
            "AWS_REGION": REGION,
            **CREDENTIALS,
        }

    def environment(
        self, bucket: str, prefix: str = "media", endpoint: str | None = None
    ) -> dict[str, str]:
        """The same, as a process's environment."""
        return {
            "VIDRELAY_MEDIA_URL": f"s3://{bucket}/{prefix}",
            "VIDRELAY_S3_ENDPOINT_URL": endpoint or self.endpoint,
            "AWS_REGION": REGION,
            **CREDENTIALS,
        }


@contextlib.contextmanager
def moto_s3() -> Iterator[S3Server]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        server.stop()


_REQUEST_LINE = re.compile(rb"(GET|PUT|POST|HEAD|DELETE) (\S+) HTTP/1\.1\r\n")


@dataclass
class SlowProxy:
    endpoint: str
    requests: list[str] = field(default_factory=list)
    """The request lines seen so far (`PUT /bucket/key?…`)."""


@contextlib.contextmanager
def slow_proxy(target_port: int, bytes_per_second: int) -> Iterator[SlowProxy]:
    """A TCP proxy to 127.0.0.1:`target_port` that forwards what clients send at
    `bytes_per_second` (answers at full speed)."""
    port = free_port()
    proxy = SlowProxy(f"http://127.0.0.1:{port}")
    loop = asyncio.new_event_loop()
    chunk = 16 * 1024

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, slow: bool) -> None:
        try:
            while data := await reader.read(chunk):
                if slow:
                    lines = _REQUEST_LINE.finditer(data)
                    proxy.requests += [b" ".join(line.groups()).decode() for line in lines]
                writer.write(data)
                await writer.drain()
                if slow:
                    await asyncio.sleep(len(data) / bytes_per_second)
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(
            pipe(reader, upstream_writer, slow=True), pipe(upstream_reader, writer, slow=False)
        )

    async def serve() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    serving = asyncio.run_coroutine_threadsafe(serve(), loop)
    for _ in range(100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.05)
    try:
        yield proxy
    finally:
        asyncio.run_coroutine_threadsafe(_cancel_all(), loop).result(10)
        assert serving.cancelled() or serving.done()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


async def _cancel_all() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
