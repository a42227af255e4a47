"""Two `vidrelay serve` replicas on one Redis share a key's requests-per-minute limit."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import ServerProcess


def test_a_requests_per_minute_limit_holds_across_two_replicas(tmp_path: Path) -> None:
    redis_url = os.environ.get("VIDRELAY_TEST_REDIS_URL")
    if not redis_url:
        if os.environ.get("CI"):
            pytest.fail("VIDRELAY_TEST_REDIS_URL must be set on CI")
        pytest.skip("VIDRELAY_TEST_REDIS_URL is not set (run the tests with scripts/test.sh)")
    shared = {"redis_url": redis_url, "engine": "false"}
    first = ServerProcess(tmp_path / "data", **shared)
    second = ServerProcess(tmp_path / "data", **shared)  # same database, another process
    key = first.cli("keys", "create", "--tenant", "busy", "--balance", "100", "--rpm", "5")
    key = key.stdout.splitlines()[-1]
    first.start()
    second.start()
    try:
        statuses = []
        for n in range(12):
            replica = first if n % 2 == 0 else second
            response = httpx.post(
                f"{replica.base_url}/v1/videos",
                headers={"Authorization": f"Bearer {key}"},
                files={"prompt": (None, f"burst {n}"), "seconds": (None, "4")},
            )
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert response.json()["error"]["code"] == "rate_limit_exceeded"
                assert int(response.headers["retry-after"]) >= 1
        assert statuses.count(200) == 5, statuses
        assert statuses.count(429) == 7
    finally:
        first.stop()
        second.stop()
