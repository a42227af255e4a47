"""A real `vidrelay serve` driven with raw HTTP and the CLI, and killed mid-render."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import create_postgres_database
from tests.e2e.server import ServerProcess
from vidrelay.domain.pricing import usd_to_micros
from vidrelay.store import accounts
from vidrelay.store.database import Database


def wait_for(base_url: str, video_id: str, key: str, statuses: set[str], timeout_s: float = 120):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        body: dict[str, Any] = httpx.get(
            f"{base_url}/v1/videos/{video_id}", headers={"Authorization": f"Bearer {key}"}
        ).json()
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        if body["status"] in statuses:
            return body, seen
        time.sleep(0.05)
    raise AssertionError(f"{video_id} stuck; saw {seen}")


def test_the_readme_curl_flow_works_with_the_document_vocabulary(
    server: ServerProcess, tmp_path: Path
) -> None:
    key = server.create_key("alice", "50")
    assert key.startswith("sk-")
    headers = {"Authorization": f"Bearer {key}"}
    created = httpx.post(
        f"{server.base_url}/v1/videos",
        headers=headers,
        files={
            "prompt": (None, "a paper boat on a rainy street"),
            "model": (None, "sora-2"),
            "seconds": (None, "8"),
            "size": (None, "1280x720"),
        },
    )
    assert created.status_code == 200, created.text
    video = created.json()
    assert video["status"] == "pending"
    done, seen = wait_for(server.base_url, video["id"], key, {"completed", "failed"})
    assert done["status"] == "completed"
    assert set(seen) <= {"pending", "processing", "completed"}
    assert done["video_url"].startswith(server.base_url)
    keyless = httpx.get(done["video_url"])
    assert keyless.status_code == 200 and keyless.headers["content-type"] == "video/mp4"
    signature = parse_qs(urlsplit(done["video_url"]).query)["signature"][0]
    time.sleep(0.5)  # the access line of that request is written
    logged = server.log_path.read_text()
    assert "route='/v1/videos/{video_id}/content'" in logged  # vidrelay's access line
    assert signature not in logged and key not in logged  # a signed link is a credential
    content = httpx.get(f"{server.base_url}/v1/videos/{video['id']}/content", headers=headers)
    assert content.content == keyless.content

    listing = server.cli("keys", "list").stdout
    assert "alice" in listing and key not in listing


def test_generate_shows_progress_and_saves_the_video(server: ServerProcess, tmp_path: Path) -> None:
    key = server.create_key("cli-user", "5")
    output = tmp_path / "out.mp4"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "vidrelay.cli",
            "generate",
            "a paper boat on a rainy street",
            "--seconds",
            "4",
            "--size",
            "1280x720",
            "-o",
            str(output),
        ],
        env={**server.env, "VIDRELAY_API_KEY": key, "VIDRELAY_BASE_URL": server.base_url},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    assert output.read_bytes()[4:8] == b"ftyp"
    assert "completed" in result.stderr
    revoke = server.cli("keys", "revoke", key)
    assert "revoked" in revoke.stdout
    refused = subprocess.run(
        [sys.executable, "-m", "vidrelay.cli", "generate", "boat", "-o", str(output)],
        env={**server.env, "VIDRELAY_API_KEY": key, "VIDRELAY_BASE_URL": server.base_url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 1 and "401" in refused.stderr


@pytest.mark.parametrize(
    ("backend", "lease_s"),
    [
        ("sqlite", "2"),
        ("postgresql", "2"),
        # a lease far longer than the test: only the restarted server's immediate take-back of
        # its dead predecessor's leases (same slot of the data directory) finishes the jobs
        ("sqlite", "3600"),
    ],
)
async def test_sigkill_mid_render_then_restart_finishes_every_job(
    tmp_path: Path, backend: str, lease_s: str
) -> None:
    database_url, drop = (None, None)
    if backend == "postgresql":
        database_url, drop = await create_postgres_database()
    server = ServerProcess(
        tmp_path / "data", database_url, lease_s=lease_s, local_max_concurrency="2"
    )
    try:
        key = server.create_key("alice", "50")
        headers = {"Authorization": f"Bearer {key}"}
        server.start()
        ids = []
        for n in range(3):
            response = httpx.post(
                f"{server.base_url}/v1/videos",
                headers=headers,
                files={"prompt": (None, f"storm {n}"), "seconds": (None, "8")},
            )
            assert response.status_code == 200, response.text
            ids.append(response.json()["id"])
        wait_for(server.base_url, ids[0], key, {"processing"})
        server.kill()

        server.start()
        for video_id in ids:
            body, _ = wait_for(server.base_url, video_id, key, {"completed", "failed"}, 240)
            assert body["status"] == "completed", body
        logged = server.log_path.read_text()  # the renders resumed, none was lost
        assert "event='local_render_resumed'" in logged and "job_lost_upstream" not in logged
        # 3 x 8 s of sora-2 at $0.10/s, charged once each, nothing refunded
        balance, ledger = await _balance(database_url or server.sqlite_url, "alice")
        assert balance == ledger == usd_to_micros("47.6")
    finally:
        server.stop()
        if drop:
            await drop()


async def _balance(database_url: str, tenant: str) -> tuple[int, int]:
    db = Database(database_url)
    try:
        async with db.read() as conn:
            found = await accounts.find_tenant(conn, tenant)
            assert found is not None
            return found.balance_micros, await accounts.ledger_sum(conn, found.id)
    finally:
        await db.dispose()
