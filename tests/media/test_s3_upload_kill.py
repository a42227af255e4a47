"""A process SIGKILLed while it uploads a video to S3 leaves no object behind: the parts it
sent stay in an unfinished multipart upload, which no GET can see."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from urllib.parse import urlsplit

from tests.fakes.s3 import moto_s3, slow_proxy

UPLOADER = textwrap.dedent(
    """
    import asyncio, sys
    from pathlib import Path
    from vidrelay.engine.background import open_media_store
    from vidrelay.settings import load_settings

    store = open_media_store(load_settings())
    asyncio.run(store.commit_assets(sys.argv[1], {"video": Path(sys.argv[2])}))
    print("committed")
    """
)


def test_a_video_upload_killed_midway_leaves_no_object(tmp_path: Path) -> None:
    video = tmp_path / "video.mp4"
    video.write_bytes(os.urandom(20 * 1024 * 1024))  # parts of 8, 8 and 4 MB
    with moto_s3() as s3:
        bucket = s3.new_bucket()
        client = s3.client()
        port = urlsplit(s3.endpoint).port
        assert port is not None
        with slow_proxy(port, bytes_per_second=1024 * 1024) as slow:
            env = {
                **os.environ,
                **s3.environment(bucket, endpoint=slow.endpoint),
                "VIDRELAY_DATA_DIR": str(tmp_path / "data"),
            }
            uploader = subprocess.Popen(
                [sys.executable, "-c", UPLOADER, "video_killed", str(video)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            try:
                deadline = time.monotonic() + 60
                parts: list[object] = []
                while not parts:  # the upload is under way and part of it is stored
                    assert uploader.poll() is None, uploader.communicate()
                    assert time.monotonic() < deadline, "no part was uploaded"
                    uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
                    if uploads:
                        listed = client.list_parts(
                            Bucket=bucket, Key=uploads[0]["Key"], UploadId=uploads[0]["UploadId"]
                        )
                        parts = listed.get("Parts", [])
                    time.sleep(0.05)
                uploader.send_signal(signal.SIGKILL)
            finally:
                uploader.kill()
                stdout, _ = uploader.communicate(timeout=30)
        assert uploader.returncode == -signal.SIGKILL and b"committed" not in stdout
        assert s3.keys(bucket) == []  # nothing to GET, not even a prefix of the video
        pending = client.list_multipart_uploads(Bucket=bucket)["Uploads"]
        assert [upload["Key"] for upload in pending] == ["media/video_killed/video.mp4"]
