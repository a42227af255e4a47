"""What `vidrelay serve` says as it starts: one block of log lines in the one log format,
naming the database (password never shown), the channels and what they serve, the local
renderer and admin API with the reason for their state, and what the config file changed
(applied at every start, it undoes runtime changes: the operator must see it)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import create_postgres_database
from tests.e2e.server import ServerProcess

CONFIG = """
[groups]
vip = "0.8"

[[channels]]
name = "vendor-a"
protocol = "openai"
base_url = "http://127.0.0.1:9"
keys = ["sk-up-secret-0001"]
route_class = "official"
models = ["sora-2"]

[[prices]]
model = "sora-2"
per_second_usd = "0.12"
"""


def started_log(server: ServerProcess) -> str:
    server.start()
    server.stop()
    text = server.log_path.read_text()
    server.log_path.unlink()
    return text


async def test_the_start_block_names_what_runs_and_what_the_config_file_changed(
    tmp_path: Path,
) -> None:
    database_url, drop = await create_postgres_database()
    config = tmp_path / "vidrelay.toml"
    config.write_text(CONFIG)
    server = ServerProcess(tmp_path / "data", database_url, config=str(config))
    try:
        first = started_log(server)
        assert "event='vidrelay_starting'" in first and "role='serve'" in first
        password = database_url.split("@")[0].rsplit(":", 1)[1]
        assert "database='postgresql+asyncpg://" in first and f":{password}@" not in first
        assert "admin_api='off (VIDRELAY_ADMIN_TOKEN is unset)'" in first
        assert "local_renderer='off (channels are declared and none of them is local)'" in first
        assert "event='channel' name='vendor-a' protocol='openai' state='enabled'" in first
        assert "sk-up-secret-0001" not in first
        for change in (
            "group vip added at 0.8",
            "channel vendor-a added",
            "price sora-2 0.10",  # the seeded default price, replaced
        ):
            assert change in first or change.replace("0.10", "$0.10") in first, first

        server.cli("groups", "set", "vip", "0.5")  # a runtime change the file will undo
        second = started_log(server)
        assert "change='group vip 0.5 → 0.8'" in second, second
        assert "channel vendor-a" not in second.split("event='channel'")[0]  # unchanged
        assert "config_changes=1" in second
        for line in first.splitlines() + second.splitlines():  # uvicorn's lines included
            assert line.startswith("timestamp=") and " level=" in line, line
    finally:
        server.stop()
        await drop()


def test_without_channels_the_local_renderer_is_on_and_says_why(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", admin_token="adm")
    text = started_log(server)
    assert "local_renderer='on (no channel is declared: it serves every model)'" in text
    assert "admin_api='on'" in text and "channels=0" in text
