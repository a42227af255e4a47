"""Migrations under concurrency: any number of processes may start together on a fresh
database; the first migrates and the others find nothing left to do."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from tests.conftest import _asyncpg_dsn, create_postgres_database

# Each process imports everything first, says it is ready, and waits for the go: then the
# four migrate at the same instant, as four servers started together would.
_MIGRATE_ON_GO = """
import asyncio, os, sys, time
from vidrelay.store.database import Database
ready, go, url = sys.argv[1:4]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.001)
asyncio.run(Database(url).upgrade())
"""


async def test_four_processes_migrating_together_on_a_fresh_postgresql_all_succeed(
    tmp_path: Path,
) -> None:
    url, drop = await create_postgres_database()
    go = tmp_path / "go"
    try:
        starts = [
            subprocess.Popen(
                [sys.executable, "-c", _MIGRATE_ON_GO, str(tmp_path / f"ready-{n}"), str(go), url],
                env=os.environ,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(4)
        ]
        deadline = time.monotonic() + 60
        while not all((tmp_path / f"ready-{n}").exists() for n in range(4)):
            assert time.monotonic() < deadline, "the processes did not get ready"
            time.sleep(0.01)
        go.touch()
        outcomes = [(start.wait(timeout=120), start.communicate()[1][-500:]) for start in starts]
        assert [code for code, _ in outcomes] == [0, 0, 0, 0], outcomes
        connection = await asyncpg.connect(_asyncpg_dsn(url))
        try:
            versions = await connection.fetch("SELECT version_num FROM alembic_version")
        finally:
            await connection.close()
        assert len(versions) == 1
    finally:
        await drop()
