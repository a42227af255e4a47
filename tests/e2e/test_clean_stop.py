"""SIGTERM or SIGINT on `vidrelay serve` or `vidrelay worker` during renders: the process hands
its running jobs back, ends every process it started (render workers, multiprocessing's
resource tracker) and exits 0 within the lease; a restart then finishes every job. And a
SIGKILL, which leaves no chance to clean up, still leaves no render worker behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import ServerProcess


def group_members(pgid: int) -> list[str]:
    """The live processes of a process group, as "pid command" lines."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members.append(f"{entry.name} {command[:120]}")
    return members


def assert_group_gone(pgid: int, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while group_members(pgid):
        assert time.monotonic() < deadline, group_members(pgid)
        time.sleep(0.1)


def submit_renders(server: ServerProcess, key: str, count: int) -> list[str]:
    ids = []
    for n in range(count):
        response = httpx.post(
            f"{server.base_url}/v1/videos",
            headers={"Authorization": f"Bearer {key}"},
            json={"prompt": f"a storm {n}", "seconds": "12"},
        )
        assert response.status_code == 200, response.text
        ids.append(response.json()["id"])
    return ids


def wait_rendering(server: ServerProcess, key: str, video_id: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        video = httpx.get(
            f"{server.base_url}/v1/videos/{video_id}",
            headers={"Authorization": f"Bearer {key}"},
        ).json()
        if video["status"] == "processing" and video["progress"] > 0:
            return
        assert time.monotonic() < deadline, video
        time.sleep(0.1)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_server_ends_its_whole_process_tree_and_its_jobs_finish_after(
    tmp_path: Path, signum: signal.Signals
) -> None:
    server = ServerProcess(tmp_path / "data", lease_s="30", local_max_concurrency="2")
    key = server.create_key("alice", "50")
    server.start()
    assert server.process is not None
    try:
        ids = submit_renders(server, key, 2)
        wait_rendering(server, key, ids[0])
        assert len(group_members(server.process.pid)) > 1  # the render workers are running
        started = time.monotonic()
        server.process.send_signal(signum)
        assert server.process.wait(timeout=30) == 0
        assert time.monotonic() - started < 30  # within the lease
        assert_group_gone(server.process.pid)

        server.start()  # the jobs were handed back: the restart finishes them
        for video_id in ids:
            assert server.wait_finished(video_id, key, 180)["status"] == "completed"
    finally:
        server.stop()


def test_a_stopped_worker_ends_its_render_workers(tmp_path: Path) -> None:
    api = ServerProcess(tmp_path / "data", engine="false")
    key = api.create_key("alice", "50")
    api.start()
    worker = subprocess.Popen(
        [sys.executable, "-m", "vidrelay.cli", "worker"],
        env={**api.env, "VIDRELAY_ENGINE": "true", "VIDRELAY_LOCAL_MAX_CONCURRENCY": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        [video_id] = submit_renders(api, key, 1)
        wait_rendering(api, key, video_id)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        assert_group_gone(worker.pid)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        api.stop()


def test_a_killed_server_leaves_no_render_worker_behind(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", local_max_concurrency="2")
    key = server.create_key("alice", "50")
    server.start()
    assert server.process is not None
    pid = server.process.pid
    try:
        ids = submit_renders(server, key, 2)
        wait_rendering(server, key, ids[0])
        os.kill(pid, signal.SIGKILL)  # the server only: its children are left to themselves
        server.process.wait(timeout=10)
        assert_group_gone(pid)
    finally:
        if group_members(pid):
            os.killpg(pid, signal.SIGKILL)
