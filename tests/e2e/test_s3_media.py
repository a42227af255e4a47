"""A real `vidrelay serve` with media on moto's S3 server, SIGKILLed while it uploads a video:
no object is visible and the job is not completed; the restarted server finishes the job and
serves the bytes it stored."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.e2e.server import ServerProcess
from tests.fakes.s3 import CREDENTIALS, REGION, moto_s3, slow_proxy


def test_a_server_killed_mid_upload_leaves_no_object_and_the_job_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**CREDENTIALS, "AWS_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    data_dir = tmp_path / "data"
    with moto_s3() as s3:
        bucket = s3.new_bucket()
        port = urlsplit(s3.endpoint).port
        assert port is not None
        media = {"media_url": f"s3://{bucket}/media"}
        with slow_proxy(port, bytes_per_second=16 * 1024) as slow:
            server = ServerProcess(data_dir, s3_endpoint_url=slow.endpoint, **media)
            key = server.create_key("alice", "10")
            server.start()
            try:
                created = httpx.post(
                    f"{server.base_url}/v1/videos",
                    data={"prompt": "a slow upload", "seconds": "4"},
                    headers={"Authorization": f"Bearer {key}"},
                )
                video_id = created.json()["id"]
                deadline = time.monotonic() + 60
                while not any(f"/{video_id}/video.mp4" in line for line in slow.requests):
                    assert time.monotonic() < deadline, slow.requests
                    time.sleep(0.02)
                time.sleep(0.5)  # a part of the video is on its way
            finally:
                server.kill()
            assert s3.keys(bucket) == []
            with sqlite3.connect(data_dir / "vidrelay.db") as db:
                row = db.execute("SELECT status FROM jobs WHERE id = ?", (video_id,)).fetchone()
            assert row == ("in_progress",)

        restarted = ServerProcess(data_dir, s3_endpoint_url=s3.endpoint, **media)
        restarted.start()
        try:
            assert restarted.wait_finished(video_id, key)["status"] == "completed"
            content = httpx.get(
                f"{restarted.base_url}/v1/videos/{video_id}/content",
                headers={"Authorization": f"Bearer {key}"},
            )
        finally:
            restarted.stop()
        assert content.status_code == 200
        assert content.content == s3.read(bucket, f"media/{video_id}/video.mp4")
