"""What a hostile client can cost a running `vidrelay serve`: memory and event-loop stalls.

Reproduces the measurements of the hardening issue against this code and, with
`--baseline-src DIR` (the `src` directory of another checkout, run with this interpreter), a
baseline on the same machine in the same run:

1. 200 `GET /v1/videos/{id}` of a finished video with distinct 1 MB `Host` headers, then 2,000
   with distinct 250-character hosts (the longest a host may be): the server's RSS after each;
2. three concurrent creates with a 13000x13000 JPEG reference: the server's peak RSS and the
   slowest `/healthz` answer meanwhile;
3. one request with 16 MB of headers (its status, the peak RSS), and 200 connections that
   trickle a header byte a second: how many the server still holds open after 15 s.

It prints figures and exits 0 whatever they are (1 only when it cannot run).

    python bench/hostile_edge.py [--baseline-src /path/to/old/src]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from harness import (
    HOST,
    Processes,
    create_key,
    free_port,
    run_bench,
    vidrelay_command,
    wait_until_up,
)


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def huge_jpeg() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (13000, 13000), 128).save(out, "JPEG", quality=95)
    return out.getvalue()


def start(label: str, src: str | None, processes: Processes, work: Path) -> tuple[Any, str, str]:
    data = work / label
    env = {**os.environ, "VIDRELAY_DATA_DIR": str(data), "VIDRELAY_HEADER_TIMEOUT_S": "10"}
    if src:
        env["PYTHONPATH"] = src
    key = create_key(env, "bench", "100")
    port = free_port()
    log = work / f"{label}.log"
    process = processes.start_logged([*vidrelay_command(), "serve", "--port", str(port)], env, log)
    base = f"http://{HOST}:{port}"
    wait_until_up(f"{base}/healthz", process, log)
    return process, base, key


def finished_video(base: str, key: str) -> str:
    auth = {"Authorization": f"Bearer {key}"}
    video = httpx.post(f"{base}/v1/videos", headers=auth, data={"prompt": "x", "seconds": "4"})
    video_id: str = video.json()["id"]
    while httpx.get(f"{base}/v1/videos/{video_id}", headers=auth).json()["status"] != "completed":
        time.sleep(0.2)
    return video_id


def host_flood(pid: int, base: str, key: str, video_id: str) -> dict[str, float]:
    auth = {"Authorization": f"Bearer {key}"}
    figures = {"rss_start_mb": rss_mb(pid)}
    statuses: dict[int, int] = {}
    with httpx.Client(timeout=30) as client:
        for n in range(200):
            host = f"h{n}-" + "a" * (1024 * 1024)
            try:
                status = client.get(
                    f"{base}/v1/videos/{video_id}", headers={**auth, "Host": host}
                ).status_code
            except httpx.HTTPError:
                status = 0
            statuses[status] = statuses.get(status, 0) + 1
        figures["rss_after_1mb_hosts_mb"] = rss_mb(pid)
        for n in range(2000):
            host = f"h{n:05d}" + "b" * 244
            client.get(f"{base}/v1/videos/{video_id}", headers={**auth, "Host": host})
        figures["rss_after_250ch_hosts_mb"] = rss_mb(pid)
    print(f"    1 MB Host answers: {statuses}")
    return figures


async def image_storm(pid: int, base: str, key: str, image: bytes) -> dict[str, float]:
    auth = {"Authorization": f"Bearer {key}"}
    slowest = 0.0
    async with httpx.AsyncClient(timeout=120) as client:

        async def create() -> int:
            files = {"input_reference": ("big.jpg", image, "image/jpeg")}
            response = await client.post(
                f"{base}/v1/videos", headers=auth, data={"prompt": "x"}, files=files
            )
            return response.status_code

        creates = asyncio.gather(*(create() for _ in range(3)))
        while not creates.done():
            began = time.perf_counter()
            await client.get(f"{base}/healthz")
            slowest = max(slowest, time.perf_counter() - began)
            await asyncio.sleep(0.02)
        statuses = await creates
    print(f"    13000x13000 create answers: {statuses}")
    return {"healthz_slowest_ms": slowest * 1000, "peak_rss_mb": rss_mb(pid, "VmHWM")}


def header_tricks(pid: int, base: str) -> dict[str, float]:
    port = int(base.rsplit(":", 1)[1])
    with socket.create_connection((HOST, port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        chunk = b"X-Pad: " + b"p" * 8000 + b"\r\n"
        sent = 0
        try:
            while sent < 16 * 1024 * 1024:
                sock.sendall(chunk)
                sent += len(chunk)
            sock.sendall(b"\r\n")
        except OSError:
            pass
        sock.settimeout(10)
        try:
            first = sock.recv(64).split(b"\r\n")[0].decode(errors="replace")
        except OSError as error:
            first = type(error).__name__
    print(f"    16 MB of headers: {first!r} after {sent / 1024 / 1024:.1f} MB sent")
    figures = {"peak_rss_after_16mb_headers_mb": rss_mb(pid, "VmHWM")}
    slow = [socket.create_connection((HOST, port)) for _ in range(200)]
    for sock in slow:
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        sock.setblocking(False)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for sock in slow:
            with contextlib.suppress(OSError):
                sock.send(b"X")
        time.sleep(1)
    still_open = 0
    for sock in slow:
        try:
            closed = sock.recv(1) == b""  # the server hung up
        except BlockingIOError:
            closed = False  # nothing to read: still open
        except OSError:
            closed = True
        still_open += not closed
        sock.close()
    figures["trickling_connections_open_after_15s"] = still_open
    return figures


def bench(args: argparse.Namespace, processes: Processes) -> bool:
    image = huge_jpeg()
    print(f"13000x13000 JPEG: {len(image) / 1024 / 1024:.1f} MB")
    targets = [("ours", None)] + ([("baseline", args.baseline_src)] if args.baseline_src else [])
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, src in targets:
            process, base, key = start(label, src, processes, Path(tmp))
            print(f"{label}:")
            video_id = finished_video(base, key)
            figures = host_flood(process.pid, base, key, video_id)
            figures |= asyncio.run(image_storm(process.pid, base, key, image))
            figures |= header_tricks(process.pid, base)
            results[label] = figures
            for name, value in figures.items():
                print(f"    {name}: {value:.0f}")
            processes.stop(process)
    if "baseline" in results:
        print("ours / baseline:")
        for name, value in results["ours"].items():
            base_value = results["baseline"][name]
            print(f"    {name}: {value / base_value:.2f}" if base_value else f"    {name}: -")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline-src", help="the src directory of a checkout to compare with")
    return run_bench(bench, parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
