"""Models as data from the operator's and the developer's side, as real processes: the issue's
`[[models]]` format in `vidrelay.toml`, `vidrelay models …` and `vidrelay prices … --when`, and
the official `openai` SDK listing models and sending declared parameters via `extra_body`."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import openai
import pytest
from openai.types import Video

from tests.e2e.server import ServerProcess

# The issue's own example, verbatim (a long comment line included).
ACME_TOML = """
[[models]]
name = "acme-video-1"              # what clients send as `model`
owned_by = "acme"                  # shown by /v1/models
sizes = ["1280x720", "720x1280", "1920x1080", "1080x1920"]   # first = default
capabilities = ["input_reference", "audio"]   # input_reference | audio | character | remix | edit | extension
routes = [
  { route_class = "official", seconds = ["5", "10"] },        # first = default
]                                  # or seconds_range = [2, 12] (integers, inclusive; default = min)

[[models.params]]                  # model-specific request fields (the SDKs' extra_body)
name = "resolution"
type = "enum"                      # enum | string | int | number | bool
values = ["720p", "1080p"]
default = "720p"

[[models.params]]
name = "seed"
type = "int"
min = 0
max = 4294967295                   # no default: absent stays absent
"""  # noqa: E501

PRICES_TOML = """
[[prices]]
model = "acme-video-1"
per_second_usd = "0.10"

[[prices]]
model = "acme-video-1"
when = { resolution = "1080p" }
per_second_usd = "0.25"
"""


def test_a_server_sells_the_models_of_its_config_file_to_the_official_sdk(tmp_path: Path) -> None:
    config = tmp_path / "vidrelay.toml"
    config.write_text(ACME_TOML + PRICES_TOML)
    server = ServerProcess(tmp_path / "data", config=str(config))
    key = server.create_key("sdk-user", "20")
    server.start()
    try:
        client = openai.OpenAI(api_key=key, base_url=f"{server.base_url}/v1", max_retries=0)
        listed = {model.id: model for model in client.models.list()}
        assert set(listed) == {"acme-video-1", "sora-2", "sora-2-pro"}
        acme = client.models.retrieve("acme-video-1")
        assert (acme.id, acme.object, acme.owned_by) == ("acme-video-1", "model", "acme")
        video_spec = (acme.model_extra or {})["video"]
        assert [param["name"] for param in video_spec["params"]] == ["resolution", "seed"]
        assert video_spec["defaults"] == {"size": "1280x720", "seconds": "5"}

        # multipart, as the SDK always sends a create: 5 s at 1080p, $0.25 a second
        made = client.videos.create(
            prompt="a paper boat",
            model="acme-video-1",  # type: ignore[arg-type]
            size="720x1280",
            extra_body={"resolution": "1080p", "seed": 42},
        )
        finished = client.videos.poll(made.id)
        assert finished.status == "completed", finished
        assert (finished.model, finished.seconds, finished.size) == (
            "acme-video-1",
            "5",
            "720x1280",
        )
        # JSON, through the SDK's generic post: 10 s at the default 720p, $0.10 a second
        made_json = client.post(
            "/videos",
            body={"prompt": "a paper boat", "model": "acme-video-1", "seconds": "10", "seed": 7},
            cast_to=Video,
        )
        assert client.videos.poll(made_json.id).status == "completed"
        with pytest.raises(openai.BadRequestError) as refused:
            client.videos.create(
                prompt="a paper boat",
                model="acme-video-1",  # type: ignore[arg-type]
                extra_body={"resolution": "4k"},
            )
        assert refused.value.body["param"] == "resolution"  # type: ignore[index]
        assert "720p, 1080p" in refused.value.message
        with pytest.raises(openai.BadRequestError) as unknown:
            client.videos.create(
                prompt="a paper boat",
                model="acme-video-1",  # type: ignore[arg-type]
                extra_body={"motion_bucket": 3},
            )
        assert unknown.value.code == "unknown_parameter"

        shown = json.loads(server.cli("tenants", "show", "sdk-user", "--json").stdout)
        assert shown["balance_usd"] == "17.750000"  # 20 - 5 x 0.25 - 10 x 0.10
    finally:
        server.stop()


def test_serve_refuses_a_config_file_with_a_bad_model_naming_it_and_the_field(
    tmp_path: Path,
) -> None:
    config = tmp_path / "vidrelay.toml"
    config.write_text(ACME_TOML.replace('seconds = ["5", "10"]', 'seconds = ["5", "ten"]'))
    server = ServerProcess(tmp_path / "data", config=str(config))
    with pytest.raises(RuntimeError) as refused:
        server.start()
    assert "models[0] (acme-video-1): routes[0].seconds[1]" in str(refused.value)

    config.write_text(
        ACME_TOML
        + '[[prices]]\nmodel = "acme-video-1"\nwhen = { fps = "24" }\nper_second_usd = "1"\n'
    )
    server = ServerProcess(tmp_path / "data2", config=str(config))
    with pytest.raises(RuntimeError) as refused:
        server.start()
    assert "prices[0] (acme-video-1): when.fps" in str(refused.value)


def test_models_and_conditional_prices_are_declared_listed_and_removed_from_the_shell(
    tmp_path: Path,
) -> None:
    server = ServerProcess(tmp_path / "data")
    cli = server.cli
    declaration = tmp_path / "acme.toml"
    declaration.write_text(ACME_TOML)
    assert "acme-video-1: declared" in cli("models", "set", str(declaration)).stdout
    assert "acme-video-1: updated" in cli("models", "set", str(declaration)).stdout
    listed = {model["name"]: model for model in json.loads(cli("models", "list", "--json").stdout)}
    assert listed["acme-video-1"]["routes"] == [{"route_class": "official", "seconds": ["5", "10"]}]
    assert listed["acme-video-1"]["served_route_classes"] == ["official"]
    assert "acme-video-1" in cli("models", "list").stdout

    cli("prices", "set", "acme-video-1", "--per-second", "0.1")
    cli("prices", "set", "acme-video-1", "--per-second", "0.3", "--when", "resolution=1080p")
    with pytest.raises(subprocess.CalledProcessError) as undeclared:
        cli("prices", "set", "acme-video-1", "--per-second", "1", "--when", "fps=24")
    assert "fps" in undeclared.value.stderr
    assert "resolution=1080p" in cli("prices", "list").stdout

    bad = tmp_path / "bad.toml"
    bad.write_text(ACME_TOML.replace('"1280x720", ', '"1281x720", '))
    with pytest.raises(subprocess.CalledProcessError) as refused:
        cli("models", "set", str(bad))
    assert "models[0] (acme-video-1): sizes[0]" in refused.value.stderr

    cli("channels", "add", "acme-local", "--protocol", "local", "--model", "acme-video-1")
    with pytest.raises(subprocess.CalledProcessError) as in_use:
        cli("models", "remove", "acme-video-1")
    assert "acme-local" in in_use.value.stderr
    cli("channels", "remove", "acme-local")
    assert "with 2 price rules" in cli("models", "remove", "acme-video-1").stdout
    names = [model["name"] for model in json.loads(cli("models", "list", "--json").stdout)]
    assert names == ["sora-2", "sora-2-pro"]


def test_a_model_declared_from_the_shell_reaches_a_running_server(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", channel_refresh_s="0.2")
    key = server.create_key("alice", "5")
    server.start()
    try:
        auth = {"Authorization": f"Bearer {key}"}
        before = httpx.get(f"{server.base_url}/v1/models", headers=auth).json()["data"]
        assert [model["id"] for model in before] == ["sora-2", "sora-2-pro"]  # now cached
        declaration = tmp_path / "acme.toml"
        declaration.write_text(ACME_TOML)
        server.cli("models", "set", str(declaration))
        server.cli("prices", "set", "acme-video-1", "--per-request", "0.5")
        deadline = time.monotonic() + 10
        while True:
            listed = httpx.get(f"{server.base_url}/v1/models", headers=auth).json()
            if "acme-video-1" in [model["id"] for model in listed["data"]]:
                break
            assert time.monotonic() < deadline
            time.sleep(0.1)
        created = httpx.post(
            f"{server.base_url}/v1/videos",
            headers=auth,
            json={"prompt": "a kite", "model": "acme-video-1", "seed": 3},
        )
        assert created.status_code == 200, created.text
        assert server.wait_finished(created.json()["id"], key)["status"] == "completed"
    finally:
        server.stop()
