"""A bad setting or config file stops any command, `serve` and `worker` included, with one line
naming the setting (or the file, table and field) and status 2: never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.run import one_line_error, vidrelay
from tests.e2e.server import free_port

COMMANDS = {
    "serve": lambda: ("serve", "--port", str(free_port())),
    "worker": lambda: ("worker",),
    "tenants list": lambda: ("tenants", "list"),
    "channels list": lambda: ("channels", "list"),
}
# what is caught in one place is checked once per kind of command: `serve` (uvicorn), `worker`
# (its own loop), and a command on the database
LEASE_ABC = ({"lease_s": "abc"}, ["VIDRELAY_LEASE_S", "valid number", "'abc'"])
BAD_SETTINGS = [
    ("tenants list", *LEASE_ABC),
    ("serve", *LEASE_ABC),
    ("worker", *LEASE_ABC),
    ("tenants list", {"lease_s": "-1"}, ["VIDRELAY_LEASE_S", "greater than 0"]),
    ("tenants list", {"render_workers": "0"}, ["VIDRELAY_RENDER_WORKERS", "equal to 1"]),
    ("tenants list", {"engine": "maybe"}, ["VIDRELAY_ENGINE", "boolean"]),
    ("tenants list", {"local_cost_per_second_usd": "-2"}, ["_COST_PER_SECOND_USD", "USD"]),
    ("serve", {"database_url": "mysql://root:hunter2@db/v"}, ["VIDRELAY_DATABASE_URL", "asyncpg"]),
    ("serve", {"media_url": "s3://Media_Bucket/v"}, ["VIDRELAY_MEDIA_URL", "bucket name"]),
    ("worker", {"media_url": "https://s3.example.com/b"}, ["VIDRELAY_MEDIA_URL", "file:///"]),
    ("serve", {"media_url": "file://relative/dir"}, ["VIDRELAY_MEDIA_URL", "absolute path"]),
    ("serve", {"media_redirect": "true"}, ["VIDRELAY_MEDIA_REDIRECT", "S3"]),
    ("serve", {"s3_endpoint_url": "minio:9000"}, ["VIDRELAY_S3_ENDPOINT_URL", "http://"]),
]  # fmt: skip


@pytest.mark.parametrize(("command", "settings", "named"), BAD_SETTINGS)
def test_a_bad_setting_is_one_line_naming_it(
    tmp_path: Path, command: str, settings: dict[str, str], named: list[str]
) -> None:
    line = one_line_error(vidrelay(tmp_path, *COMMANDS[command](), timeout_s=60, **settings))
    assert all(part in line for part in named), line
    assert "hunter2" not in line


MISSING = None, ["missing.toml", "VIDRELAY_CONFIG", "No such file"]
# checked against the catalog when applied, after the database is open
UNKNOWN_MODEL = (
    "[[channels]]\nname = 'a'\nprotocol = 'local'\nmodels = ['nope']\n",
    ["channels[0] (a)", "nope"],
)
BAD_FILES = [
    ("serve", *MISSING),
    ("worker", *MISSING),
    ("channels list", *MISSING),
    ("serve", *UNKNOWN_MODEL),
    ("worker", *UNKNOWN_MODEL),
    ("channels list", *UNKNOWN_MODEL),
    ("serve", "[[channels]]\nname = 'a'\nprotocol = 'local\n", ["not valid TOML"]),
    ("serve", "[[channels]]\nname = 'a'\nprotocol = 'local'\nkey = 1\n", ["channels[0]", "key"]),
    ("serve", "[[channels]]\nprotocol = 'local'\n", ["channels[0]", "name is required"]),
    ("serve", "[[models]]\nname = 'm'\nsizes = ['big']\n", ["models[0] (m)", "sizes"]),
    ("serve", "[[channel]]\nname = 'a'\n", ["unknown channel", "channels"]),
    ("serve", "[groups]\nvip = 0.8\n", ["groups.vip", "strings"]),
]  # fmt: skip


@pytest.mark.parametrize(("command", "text", "named"), BAD_FILES)
def test_a_bad_config_file_is_one_line_naming_the_file_table_and_field(
    tmp_path: Path, command: str, text: str | None, named: list[str]
) -> None:
    config = tmp_path / ("missing.toml" if text is None else "vidrelay.toml")
    if text is not None:
        config.write_text(text)
    if command == "channels list":
        assert vidrelay(tmp_path, "db", "upgrade").returncode == 0
    result = vidrelay(tmp_path, *COMMANDS[command](), config=str(config), timeout_s=60)
    line = one_line_error(result)
    assert str(config) in line and all(part in line for part in named), line


@pytest.mark.parametrize("command", ["serve", "worker", "tenants list"])
def test_a_database_that_cannot_be_reached_is_one_line_naming_it(
    tmp_path: Path, command: str
) -> None:
    port = free_port()  # nobody listens there
    url = f"postgresql+asyncpg://vidrelay:hunter2@127.0.0.1:{port}/vidrelay"
    result = vidrelay(tmp_path, *COMMANDS[command](), timeout_s=60, database_url=url)
    line = one_line_error(result)
    assert "VIDRELAY_DATABASE_URL" in line and f"127.0.0.1:{port}" in line, line
    assert "hunter2" not in line
