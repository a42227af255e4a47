"""Benchmark `GET /v1/videos/{id}/content` streamed through vidrelay from S3 against reading
the same object straight from the S3 server (issue 14: at least 0.5x, with flat memory).

One moto S3 server (`moto_server`, in its own process) holds a 100 MB video object; a `vidrelay
serve` process with `VIDRELAY_MEDIA_URL=s3://…` renders one short video with its local renderer,
whose object is then replaced by the 100 MB one. Each round downloads the object straight from
moto (a presigned GET, the same HTTP client) and then through vidrelay, alternating, so drift
shows; the ratio compares the median throughputs. The server's resident memory is sampled
during its downloads: its peak minus its level before the first download is what streaming a
100 MB video costs it. A benchmark: it exits 0 when the goal is met, 1 otherwise.

    python bench/content.py [--megabytes 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import httpx

from harness import (
    HOST,
    CannotRun,
    Processes,
    create_key,
    free_port,
    run_bench,
    vidrelay_command,
    wait_until_up,
)

GOAL = 0.5
BUCKET = "vidrelay-bench"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}
REGION = "us-east-1"


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class PeakRss:
    """Samples a process's resident memory every 10 ms while running."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = rss_bytes(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss_bytes(self.pid))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def download(client: httpx.Client, url: str, headers: dict[str, str], size: int) -> float:
    """Seconds to read the whole body (checked to be `size` bytes)."""
    started = time.perf_counter()
    received = 0
    with client.stream("GET", url, headers=headers) as response:
        if response.status_code != 200:
            raise CannotRun(f"GET {url.split('?')[0]} answered {response.status_code}")
        for chunk in response.iter_raw(1024 * 1024):
            received += len(chunk)
    elapsed = time.perf_counter() - started
    if received != size:
        raise CannotRun(f"read {received} bytes, expected {size}")
    return elapsed


def bench(args: argparse.Namespace, processes: Processes) -> bool:
    size = args.megabytes * 1024 * 1024
    work = Path(tempfile.mkdtemp(prefix="vidrelay-content-bench-"))
    s3_port = free_port()
    s3_url = f"http://{HOST}:{s3_port}"
    moto_log = work / "moto.log"
    moto = processes.start_logged(
        [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(s3_port)],
        os.environ.copy(),
        moto_log,
    )
    wait_until_up(f"{s3_url}/moto-api/", moto, moto_log)
    s3: Any = boto3.client(
        "s3",
        endpoint_url=s3_url,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )
    s3.create_bucket(Bucket=BUCKET)

    port = free_port()
    env = {
        **os.environ,
        **CREDENTIALS,
        "AWS_REGION": REGION,
        "VIDRELAY_DATA_DIR": str(work / "data"),
        "VIDRELAY_MEDIA_URL": f"s3://{BUCKET}/media",
        "VIDRELAY_S3_ENDPOINT_URL": s3_url,
        "VIDRELAY_RENDER_WORKERS": "1",
        "VIDRELAY_ACCESS_LOG": "false",
    }
    key = create_key(env, "bench", 100)
    server_log = work / "server.log"
    server = processes.start_logged(
        [*vidrelay_command(), "serve", "--host", HOST, "--port", str(port)], env, server_log
    )
    base = f"http://{HOST}:{port}"
    wait_until_up(f"{base}/healthz", server, server_log)
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(timeout=120) as client:
        created = client.post(
            f"{base}/v1/videos", data={"prompt": "bench", "seconds": "4"}, headers=auth
        )
        video_id = created.json()["id"]
        deadline = time.monotonic() + 120
        while (
            client.get(f"{base}/v1/videos/{video_id}", headers=auth).json()["status"] != "completed"
        ):
            if time.monotonic() > deadline:
                raise CannotRun("the video did not complete in 2 minutes")
            time.sleep(0.2)
        big = work / "video.bin"
        with big.open("wb") as out:
            for _ in range(args.megabytes):
                out.write(os.urandom(1024 * 1024))
        s3.upload_file(
            str(big), BUCKET, f"media/{video_id}/video.mp4", ExtraArgs={"ContentType": "video/mp4"}
        )
        big.unlink()
        direct_url = s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": BUCKET, "Key": f"media/{video_id}/video.mp4"},
            ExpiresIn=3600,
        )
        through_url = f"{base}/v1/videos/{video_id}/content"
        rss_before = rss_bytes(server.pid)  # before its first download
        direct: list[float] = []
        through: list[float] = []
        with PeakRss(server.pid) as peak:
            download(client, direct_url, {}, size)  # warm both paths once
            download(client, through_url, auth, size)
            for _ in range(args.rounds):
                direct.append(size / download(client, direct_url, {}, size))
                through.append(size / download(client, through_url, auth, size))
    megabyte = 1024 * 1024
    ratio = statistics.median(through) / statistics.median(direct)
    print(
        f"object: {args.megabytes} MB, {args.rounds} rounds, alternating (moto S3 server, {HOST})"
    )
    print("straight from S3:  " + ", ".join(f"{t / megabyte:.0f}" for t in direct) + " MB/s")
    print("through vidrelay:  " + ", ".join(f"{t / megabyte:.0f}" for t in through) + " MB/s")
    print(f"ratio (medians): {ratio:.2f}x (goal >= {GOAL}x)")
    print(
        f"server RSS: {rss_before / megabyte:.0f} MB before, peak {peak.peak / megabyte:.0f} MB "
        f"during the downloads (+{(peak.peak - rss_before) / megabyte:.0f} MB for a "
        f"{args.megabytes} MB video)"
    )
    return ratio >= GOAL


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    return run_bench(bench, parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
