"""`vidrelay worker` runs the engine apart from the API: an API server with the engine off only
accepts jobs; the worker process runs them, sends their webhooks with links to where the API
server serves, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.server import ServerProcess
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.webhooks.receiver import Receiver


def test_an_api_without_engine_queues_jobs_and_a_worker_runs_them(
    tmp_path: Path, upstream: FakeOpenAIUpstream
) -> None:
    config = tmp_path / "vidrelay.toml"
    config.write_text(
        f"""
[[channels]]
name = "vendor-a"
protocol = "openai"
base_url = "{upstream.url}"
keys = ["sk-up-good-0001"]
route_class = "official"
models = ["sora-2"]
"""
    )
    settings = {
        "config": str(config),
        "poll_first_s": "0.2",
        "poll_steady_s": "0.3",
        "outbound_allowlist": "127.0.0.1",
        "webhook_tick_s": "0.1",
    }
    receiver = Receiver()
    receiver.start()
    api = ServerProcess(tmp_path / "data", engine="false", **settings)
    key = api.create_key("acme", "10")
    auth = {"Authorization": f"Bearer {key}"}
    api.start()
    worker: subprocess.Popen[str] | None = None
    try:
        created = httpx.post(
            f"{api.base_url}/v1/videos",
            headers=auth,
            json={"prompt": "a kite", "seconds": "4", "callback_url": f"{receiver.base_url}/ok"},
        )
        assert created.status_code == 200, created.text
        video_id = created.json()["id"]
        time.sleep(1.0)
        pending = httpx.get(f"{api.base_url}/v1/videos/{video_id}", headers=auth).json()
        assert pending["status"] == "pending" and upstream.requests == []

        worker = subprocess.Popen(
            [sys.executable, "-m", "vidrelay.cli", "worker"],
            env={**api.env, "VIDRELAY_ENGINE": "true"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        video = api.wait_finished(video_id, key)
        assert video["status"] == "completed", video
        assert len(upstream.requests_to("/v1/videos", "POST")) == 1
        content = httpx.get(f"{api.base_url}/v1/videos/{video_id}/content", headers=auth)
        assert content.status_code == 200 and content.content
        # the webhook, sent by the worker, links to the port the API server serves (VIDRELAY_
        # PUBLIC_URL is unset; the worker serves nothing), and the link works without a key
        deadline = time.monotonic() + 30
        while not receiver.on("/ok"):
            assert time.monotonic() < deadline, "no webhook"
            time.sleep(0.1)
        payload = json.loads(receiver.on("/ok")[0].body)
        link = payload["data"]["video"]["video_url"]
        assert link.startswith(f"{api.base_url}/v1/videos/{video_id}/content?"), link
        assert httpx.get(link).content == content.content
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
        api.stop()
        receiver.stop()
