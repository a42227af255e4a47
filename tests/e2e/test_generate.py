"""`vidrelay generate` never loses a video the user paid for: the id comes first, a server
restart while it waits is ridden out, and Ctrl-C says how to collect the video later with
`--resume`, which then saves it."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.server import ServerProcess


def start_generate(server: ServerProcess, key: str, output: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vidrelay.cli", "generate", "a storm at sea", "--seconds", "12",
         "-o", str(output)],
        env={**server.env, "VIDRELAY_API_KEY": key, "VIDRELAY_BASE_URL": server.base_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def the_rendering_job(server: ServerProcess, key: str) -> str:
    deadline = time.monotonic() + 60
    while True:
        listing = httpx.get(
            f"{server.base_url}/v1/videos", headers={"Authorization": f"Bearer {key}"}
        ).json()["data"]
        if listing and listing[0]["status"] == "processing":
            video_id: str = listing[0]["id"]
            return video_id
        assert time.monotonic() < deadline, listing
        time.sleep(0.1)


def test_generate_rides_out_a_server_restart(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data")
    key = server.create_key("alice", "50")
    server.start()
    output = tmp_path / "storm.mp4"
    generate = start_generate(server, key, output)
    try:
        video_id = the_rendering_job(server, key)
        server.stop()  # the job goes back to the queue; generate finds nobody listening
        time.sleep(1.5)
        server.start()
        stdout, stderr = generate.communicate(timeout=240)
        assert generate.returncode == 0, stderr
        assert stderr.splitlines()[0].startswith(f"{video_id} accepted"), stderr
        assert "trying again" in stderr and "Traceback" not in stderr
        assert stdout.strip() == f"{video_id} saved to {output}"
        content = httpx.get(
            f"{server.base_url}/v1/videos/{video_id}/content",
            headers={"Authorization": f"Bearer {key}"},
        )
        assert output.read_bytes() == content.content
    finally:
        generate.kill()
        server.stop()


def test_ctrl_c_leaves_the_job_running_and_resume_saves_it(
    server: ServerProcess, tmp_path: Path
) -> None:
    key = server.create_key("alice", "50")
    output = tmp_path / "storm.mp4"
    generate = start_generate(server, key, output)
    assert generate.stderr is not None
    accepted = generate.stderr.readline()  # the id comes first, before anything else
    video_id = the_rendering_job(server, key)
    assert accepted.startswith(f"{video_id} accepted"), accepted
    generate.send_signal(signal.SIGINT)
    _stdout, stderr = generate.communicate(timeout=30)
    assert generate.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"{video_id} goes on on the server and stays charged" in stderr
    assert f"vidrelay generate --resume {video_id} -o {output}" in stderr
    assert not output.exists()

    resumed = subprocess.run(
        [sys.executable, "-m", "vidrelay.cli", "generate", "--resume", video_id, "-o", str(output)],
        env={**server.env, "VIDRELAY_API_KEY": key, "VIDRELAY_BASE_URL": server.base_url},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert output.read_bytes()[4:8] == b"ftyp"  # an MP4
