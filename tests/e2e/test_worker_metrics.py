"""A real `vidrelay worker` serves `/metrics` on `VIDRELAY_METRICS_PORT`, behind the metrics
token: the engine families, counting the job it ran, while the API process beside it exposes
the HTTP families and no engine ones."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.server import ServerProcess, free_port

TOKEN = "scrape-me"


def scrape(url: str) -> str:
    response = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    return response.text


def test_a_worker_serves_its_engine_metrics_on_its_metrics_port(tmp_path: Path) -> None:
    api = ServerProcess(tmp_path / "data", engine="false", metrics_token=TOKEN)
    key = api.create_key("acme", "10")
    port = free_port()
    api.start()
    worker = subprocess.Popen(
        [sys.executable, "-m", "vidrelay.cli", "worker"],
        env={**api.env, "VIDRELAY_ENGINE": "true", "VIDRELAY_METRICS_PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    metrics_url = f"http://127.0.0.1:{port}/metrics"
    try:
        created = httpx.post(
            f"{api.base_url}/v1/videos",
            headers={"Authorization": f"Bearer {key}"},
            json={"prompt": "a kite", "seconds": "4"},
        )
        assert created.status_code == 200, created.text
        assert api.wait_finished(created.json()["id"], key)["status"] == "completed"
        deadline = time.monotonic() + 30
        while True:  # the port opens once the worker has started
            try:
                refused = httpx.get(metrics_url)
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline and worker.poll() is None, "no metrics port"
                time.sleep(0.1)
        assert refused.status_code == 401
        assert refused.json()["error"]["code"] == "invalid_metrics_token"
        elsewhere = httpx.get(f"http://127.0.0.1:{port}/v1/videos")
        assert elsewhere.status_code == 404 and "error" in elsewhere.json()
        engine = scrape(metrics_url)
        finished = (
            'vidrelay_jobs_finished_total{channel="local",model="sora-2",outcome="completed"}'
        )
        assert f"{finished} 1.0" in engine
        assert "vidrelay_queue_depth 0.0" in engine
        assert "vidrelay_http_requests_total" not in engine
        served = scrape(f"{api.base_url}/metrics")
        assert 'vidrelay_jobs_accepted_total{model="sora-2"} 1.0' in served
        assert "vidrelay_jobs_finished_total" not in served
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
        api.stop()
