"""A real `vidrelay serve` with VIDRELAY_LOG_FORMAT=json writes nothing but JSON lines, uvicorn's
included, and its access lines carry request ids and no credential (issue 14, part 4)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.e2e.server import ServerProcess


def test_a_json_server_prints_only_json_lines_with_request_ids(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", log_format="json")
    key = server.create_key("alice", "5")
    server.start()
    try:
        headers = {"Authorization": f"Bearer {key}"}
        created = httpx.post(
            f"{server.base_url}/v1/videos",
            headers={**headers, "X-Request-Id": "create-1"},
            files={"prompt": (None, "a lantern on a pier"), "seconds": (None, "4")},
        )
        assert created.status_code == 200, created.text
        assert created.headers["x-request-id"] == "create-1"
        done = server.wait_finished(created.json()["id"], key)
        assert done["status"] == "completed", done
        signed = httpx.get(done["video_url"], headers=headers)
        assert signed.status_code == 200
    finally:
        server.stop()
    text = server.log_path.read_text()
    lines = [json.loads(line) for line in text.splitlines()]  # every line, or this raises
    events = [line["event"] for line in lines]
    assert any(event.startswith("Uvicorn running on") for event in events)  # uvicorn's, as JSON
    assert "Shutting down" in events
    access = [line for line in lines if line["event"] == "request"]
    assert {"method": "POST", "route": "/v1/videos", "status": 200, "request_id": "create-1"} in [
        {name: line[name] for name in ("method", "route", "status", "request_id")}
        for line in access
    ]
    assert all(line["request_id"] for line in access)
    content = [line for line in access if line["route"] == "/v1/videos/{video_id}/content"]
    assert [line["status"] for line in content] == [200]
    signature = parse_qs(urlsplit(done["video_url"]).query)["signature"][0]
    assert signature not in text and key not in text
