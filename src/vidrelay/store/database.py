"""The async engine, one-transaction units of work, and migrations on start.

SQLite needs care to be safe while a CLI and the server write the same file: WAL, a busy
timeout, and `BEGIN IMMEDIATE` for writing transactions, so that a transaction that reads then
writes never fails on a lock upgrade. Inside one process, writers also queue on an asyncio lock
before they begin: SQLite lets one writer in at a time anyway, and its busy handler makes the
others sleep and retry with growing pauses (tens of milliseconds each), which under load left
most connections asleep and the engine's writes seconds late. PostgreSQL needs none of that.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from vidrelay.settings import InvalidSettings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_IMMEDIATE = "vidrelay_immediate"
_SNAPSHOT = "vidrelay_snapshot"
_MIGRATION_LOCK = 0x76_69_64_72_65_6C_61_79  # "vidrelay": the advisory lock migrations hold
_NO_SUCH_DATABASE = "3D000"  # PostgreSQL's invalid_catalog_name


class DatabaseUnreachable(InvalidSettings):
    """The database named by the settings cannot be reached or refuses the login."""


# SQLSTATE classes of a refused connection: 08 connection exception, 28 invalid authorization,
# 57P03 the server is starting or shutting down
_CONNECTION_STATES = ("08", "28", "57P03")


def database_label(url: str) -> str:
    """A database as people should see it: a SQLite file's path, any other URL with its
    password masked (logs, CLI messages)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return parsed.database
    return parsed.render_as_string(hide_password=True)


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = make_url(url).get_backend_name() == "sqlite"
        if self.is_sqlite:
            self.engine: AsyncEngine = create_async_engine(
                url, connect_args={"timeout": 30}, pool_size=8, max_overflow=8
            )
            _configure_sqlite(self.engine)
            self._sqlite_writer = asyncio.Lock()
        else:
            self.engine = create_async_engine(url, pool_size=10, max_overflow=20)
        self.committed_writes = 0
        """Writing transactions committed through this object (the CLI names the database
        it wrote to)."""

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One writing transaction: committed on success, rolled back on any error."""
        if not self.is_sqlite:
            async with self.engine.connect() as conn, conn.begin():
                yield conn
        else:
            async with self._sqlite_writer, self.engine.connect() as conn:
                conn = await conn.execution_options(**{_IMMEDIATE: True})
                async with conn.begin():
                    yield conn
        self.committed_writes += 1

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncConnection]:
        """Several reads that see one state of the database (a job and its events, say),
        where `read` gives each statement its own: REPEATABLE READ on PostgreSQL, a deferred
        transaction on SQLite (in WAL, its snapshot is taken at its first read)."""
        async with self.engine.connect() as conn:
            if self.is_sqlite:
                conn = await conn.execution_options(**{_SNAPSHOT: True})
            else:
                conn = await conn.execution_options(isolation_level="REPEATABLE READ")
            async with conn.begin():
                yield conn

    async def check_reachable(self) -> bool:
        """Whether the database exists (False: its server says it does not). A server that
        refuses the connection (down, unknown host, wrong password) is a setting to fix, said in
        one line (`DatabaseUnreachable`), not a traceback."""
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (OSError, DBAPIError) as error:
            sqlstate = str(getattr(getattr(error, "orig", None), "sqlstate", "") or "")
            if sqlstate == _NO_SUCH_DATABASE:
                return False
            if isinstance(error, DBAPIError) and not sqlstate.startswith(_CONNECTION_STATES):
                raise
            reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            raise DatabaseUnreachable(
                f"VIDRELAY_DATABASE_URL: cannot connect to {database_label(self.url)}: {reason}"
            ) from error
        return True

    async def has_schema(self) -> bool:
        """Whether the database exists and holds vidrelay's tables (Alembic's version table),
        found without creating anything: a missing SQLite file is never opened, a missing
        PostgreSQL database is an answer, not an error."""
        if self.is_sqlite:
            path = make_url(self.url).database
            if not path or path == ":memory:" or not await asyncio.to_thread(Path(path).is_file):
                return False
        elif not await self.check_reachable():
            return False
        try:
            async with self.engine.connect() as conn:
                return await conn.run_sync(lambda c: inspect(c).has_table("alembic_version"))
        except DBAPIError as error:
            if getattr(error.orig, "sqlstate", None) == _NO_SUCH_DATABASE:
                return False
            raise

    async def upgrade(self) -> None:
        """Apply Alembic migrations up to head on this database, in one transaction (a failed
        migration leaves nothing half-done) that holds the database's migration lock, so any
        number of processes may start together: the first migrates, the others wait for it and
        find nothing left to do (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: an advisory lock)."""
        if not self.is_sqlite and not await self.check_reachable():
            raise DatabaseUnreachable(
                f"VIDRELAY_DATABASE_URL: the database {database_label(self.url)} does not "
                f"exist; create it first (e.g. createdb)"
            )
        async with self.engine.connect() as conn:
            if self.is_sqlite:
                conn = await conn.execution_options(**{_IMMEDIATE: True})
            else:
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                )
            await conn.run_sync(_upgrade)
            await conn.commit()

    async def dispose(self) -> None:
        await self.engine.dispose()


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def _upgrade(connection: Connection) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _configure_sqlite(engine: AsyncEngine) -> None:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event decide how a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    def on_begin(conn: Connection) -> None:
        # Reads run in autocommit (each statement its own snapshot): an explicit BEGIN would
        # cost extra round trips to the driver thread on the hottest path, the status poll.
        options = conn.get_execution_options()
        if options.get(_IMMEDIATE, False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif options.get(_SNAPSHOT, False):
            conn.exec_driver_sql("BEGIN")

    event.listen(engine.sync_engine, "connect", on_connect)
    event.listen(engine.sync_engine, "begin", on_begin)
