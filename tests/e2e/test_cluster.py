"""`scripts/cluster.sh` runs the scale-out shape on one machine: a video created through one
API process is read and downloaded through the other, and `stop` leaves nothing running."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx

from tests.chaos_harness import Cluster, cluster_settings, fresh_database, redis_url_or_skip


def _session_members(session_ids: set[int]) -> list[int]:
    """Live processes in any of these sessions (each cluster process leads its own)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) in session_ids:  # state, ppid, pgrp, session
            members.append(int(entry.name))
    return members


def test_two_api_processes_and_two_workers_share_one_database_and_stop_cleanly(
    tmp_path: Path,
) -> None:
    redis_url = redis_url_or_skip()
    with fresh_database() as database_url:
        cluster = Cluster(tmp_path / "cluster", cluster_settings(database_url, redis_url))
        try:
            cluster.start()
            names = ["api-1", "api-2", "worker-1", "worker-2", "s3"]
            pids = {name: cluster.pid(name) for name in names}
            assert all(pids.values()), pids
            status = cluster.status()
            assert status.returncode == 0 and status.stdout.count(" running ") == 5, status
            bucket = httpx.get(f"{cluster.shared['VIDRELAY_S3_ENDPOINT_URL']}/vidrelay")
            assert bucket.status_code == 200, bucket.text

            key = cluster.cli("keys", "create", "--tenant", "acme", "--balance", "5")
            auth = {"Authorization": f"Bearer {key.splitlines()[-1]}"}
            first, second = cluster.api_urls()
            created = httpx.post(
                f"{first}/v1/videos", headers=auth, json={"prompt": "two hosts", "seconds": "4"}
            )
            assert created.status_code == 200, created.text
            video_id = created.json()["id"]
            deadline = time.monotonic() + 90
            while (video := httpx.get(f"{second}/v1/videos/{video_id}", headers=auth).json())[
                "status"
            ] not in ("completed", "failed"):
                assert time.monotonic() < deadline, video
                time.sleep(0.2)
            assert video["status"] == "completed", video
            content = httpx.get(f"{second}/v1/videos/{video_id}/content", headers=auth)
            assert content.status_code == 200 and content.content[4:8] == b"ftyp"
            assert httpx.get(f"{first}/v1/videos/{video_id}/content", headers=auth).content == (
                content.content
            )
        finally:
            stopped = cluster.stop()
        assert stopped.returncode == 0, stopped.stderr
        assert _session_members(set(pids.values())) == []  # type: ignore[arg-type]
        assert not any((cluster.run_dir / f"{name}.pid").exists() for name in names)
        assert cluster.status().returncode == 3
        for pid in pids.values():
            assert pid is not None
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            raise AssertionError(f"pid {pid} still runs")
