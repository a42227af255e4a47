"""Channels from the operator's side, as real processes: `vidrelay channels …` and the
`[[channels]]` of `vidrelay.toml`, read by `vidrelay serve` at start."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import ServerProcess
from tests.fakes.openai_upstream import FakeOpenAIUpstream, tiny_mp4


def test_channels_are_added_listed_switched_tested_and_removed_from_the_shell(
    tmp_path: Path, upstream: FakeOpenAIUpstream
) -> None:
    server = ServerProcess(tmp_path / "data")
    cli = server.cli
    assert "built-in local renderer" in cli("channels", "list").stdout
    cli(
        "channels", "add", "vendor-a", "--protocol", "openai", "--base-url", upstream.url,
        "--key", "sk-up-good-0001", "--route-class", "official", "--model", "sora-2",
        "--map", "sora-2=sora-2-2025-12-08", "--priority", "10", "--max-concurrency", "3",
    )  # fmt: skip
    listed = json.loads(cli("channels", "list", "--json").stdout)
    assert [(c["name"], c["status"], c["keys"]) for c in listed] == [
        ("vendor-a", "enabled", ["sk-up…0001"])
    ]
    assert listed[0]["model_map"] == {"sora-2": "sora-2-2025-12-08"}
    server.env["COLUMNS"] = "250"  # wide enough for the table's row to stay on one line
    table = cli("channels", "list").stdout
    row = next(line for line in table.splitlines() if "vendor-a" in line)
    assert upstream.url in row and "sk-up…0001" in row and "enabled" in row
    assert "sk-up-good-0001" not in table

    tested = cli("channels", "test", "vendor-a", "--json")
    assert json.loads(tested.stdout)["healthy"] is True
    assert upstream.requests_to("/v1/videos", "POST") == []  # nothing billable

    cli("channels", "disable", "vendor-a")
    assert json.loads(cli("channels", "list", "--json").stdout)[0]["status"] == "disabled"
    cli("channels", "enable", "vendor-a")

    cli(
        "channels", "add", "bad-key", "--protocol", "openai", "--base-url", upstream.url,
        "--key", "sk-up-wrong-9999", "--route-class", "official", "--model", "sora-2",
    )  # fmt: skip
    with pytest.raises(subprocess.CalledProcessError) as refused:
        cli("channels", "test", "bad-key")
    assert refused.value.returncode == 1 and "refused" in refused.value.stdout
    cli(
        "channels", "add", "down", "--protocol", "openai", "--base-url", "http://127.0.0.1:9",
        "--key", "sk-up-x-0001", "--route-class", "official", "--model", "sora-2",
    )  # fmt: skip
    with pytest.raises(subprocess.CalledProcessError) as unreachable:
        cli("channels", "test", "down")
    assert "unreachable" in unreachable.value.stdout

    with pytest.raises(subprocess.CalledProcessError) as duplicate:
        cli("channels", "add", "down", "--protocol", "local")
    assert "exists" in duplicate.value.stderr
    cli("channels", "remove", "down")
    names = [c["name"] for c in json.loads(cli("channels", "list", "--json").stdout)]
    assert names == ["bad-key", "vendor-a"]


def test_a_server_runs_jobs_on_the_channels_of_its_config_file(
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
model_map = {{ "sora-2" = "sora-2-2025-12-08" }}
priority = 10
weight = 1
max_concurrency = 50
"""
    )
    server = ServerProcess(
        tmp_path / "data", config=str(config), poll_first_s="0.2", poll_steady_s="0.3"
    )
    key = server.create_key("acme", "10")
    server.start()
    try:
        auth = {"Authorization": f"Bearer {key}"}
        created = httpx.post(
            f"{server.base_url}/v1/videos",
            headers=auth,
            json={"prompt": "a kite", "seconds": "4"},
            timeout=30,
        )
        assert created.status_code == 200, created.text
        video_id = created.json()["id"]
        video = server.wait_finished(video_id, key)
        assert video["status"] == "completed", video
        (submitted,) = upstream.requests_to("/v1/videos", "POST")
        assert submitted.form["model"] == "sora-2-2025-12-08"
        content = httpx.get(f"{server.base_url}/v1/videos/{video_id}/content", headers=auth)
        assert content.content == tiny_mp4()
        pro = httpx.post(
            f"{server.base_url}/v1/videos",
            headers=auth,
            json={"prompt": "a kite", "model": "sora-2-pro", "seconds": "10"},
        )
        assert pro.status_code == 400 and pro.json()["error"]["code"] == "model_not_served"
    finally:
        server.stop()
