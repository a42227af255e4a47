"""Every command finds its data the same way (`--data-dir`, `VIDRELAY_DATA_DIR`,
`VIDRELAY_DATABASE_URL`), never makes a database of its own, and names the one it wrote to."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.cli.run import one_line_error, vidrelay
from tests.conftest import create_postgres_database
from tests.e2e.server import ServerProcess

WAYS_TO_POINT = ("--data-dir", "VIDRELAY_DATA_DIR", "VIDRELAY_DATABASE_URL")


@pytest.mark.parametrize(
    "command",
    [
        ("keys", "create", "--tenant", "alice", "--balance", "5"),
        ("tenants", "list"),
        ("ledger",),
        ("channels", "list"),
    ],
)
def test_a_command_run_where_no_database_is_creates_nothing_and_says_where_it_looked(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    line = one_line_error(vidrelay(tmp_path, *command))
    assert f"no vidrelay database at {tmp_path / 'vidrelay-data' / 'vidrelay.db'}" in line
    assert all(way in line for way in WAYS_TO_POINT), line
    assert list(tmp_path.iterdir()) == []


def test_the_data_dir_option_and_variable_reach_the_database_the_server_uses(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    server = ServerProcess(data)
    server.start()
    try:
        by_option = vidrelay(
            elsewhere, "--data-dir", str(data), "keys", "create", "--tenant", "alice",
            "--balance", "5", data_dir=str(elsewhere / "not-this-one"),
        )  # fmt: skip
        by_variable = vidrelay(elsewhere, "keys", "create", "--tenant", "bob", data_dir=str(data))
        for created in (by_option, by_variable):
            assert created.returncode == 0, created.stderr
            assert created.stderr == f"wrote to database {data.resolve() / 'vidrelay.db'}\n"
            key = created.stdout.splitlines()[-1]
            listed = httpx.get(
                f"{server.base_url}/v1/videos", headers={"Authorization": f"Bearer {key}"}
            )
            assert listed.status_code == 200, listed.text
        read = vidrelay(elsewhere, "--data-dir", str(data), "tenants", "list")
        assert read.returncode == 0 and read.stderr == ""  # a read names nothing
        assert "alice" in read.stdout and "bob" in read.stdout
    finally:
        server.stop()
    assert list(elsewhere.iterdir()) == []


async def test_on_postgresql_no_database_or_no_schema_is_refused_and_a_write_names_it_masked(
    tmp_path: Path,
) -> None:
    url, drop = await create_postgres_database()
    try:
        parsed = make_url(url)
        assert parsed.password
        shown = parsed.render_as_string(hide_password=True)
        plain = f"{parsed.username}:{parsed.password}@"
        missing = parsed.set(database=f"{parsed.database}_missing")
        for where in (missing.render_as_string(hide_password=False), url):  # no schema yet
            line = one_line_error(vidrelay(tmp_path, "tenants", "list", database_url=where))
            assert ":***@" in line and plain not in line, line
            assert all(way in line for way in WAYS_TO_POINT), line
        assert shown in line

        upgraded = vidrelay(tmp_path, "db", "upgrade", database_url=url)
        assert upgraded.returncode == 0, upgraded.stderr
        created = vidrelay(tmp_path, "keys", "create", "--tenant", "alice", database_url=url)
        assert created.returncode == 0, created.stderr
        assert created.stderr == f"wrote to database {shown}\n"
        assert plain not in created.stderr
        assert "alice" in vidrelay(tmp_path, "tenants", "list", database_url=url).stdout
    finally:
        await drop()
