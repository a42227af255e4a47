"""What every `vidrelay` subcommand shares: its settings, running store work, money parsing,
formatting."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from vidrelay.domain.errors import VidrelayError
from vidrelay.domain.pricing import usd_to_micros
from vidrelay.settings import Settings, load_settings
from vidrelay.store.database import Database, database_label

err = Console(stderr=True, soft_wrap=True)  # messages name paths and commands: never cut them
T = TypeVar("T")
WHERE_THE_DATA_IS = "--data-dir DIR, VIDRELAY_DATA_DIR or VIDRELAY_DATABASE_URL"
_run_settings: list[Settings] = []


def load_run_settings(data_dir: Path | None) -> None:
    """Read this run's settings once, `--data-dir` over `VIDRELAY_DATA_DIR` (the root
    callback), so every command finds its data the same way."""
    _run_settings[:] = [load_settings(data_dir=data_dir) if data_dir else load_settings()]


def cli_settings() -> Settings:
    """This run's settings (see `load_run_settings`)."""
    if not _run_settings:
        load_run_settings(None)
    return _run_settings[0]


def with_database(
    work: Callable[[Database], Awaitable[T]],
    settings: Settings | None = None,
    *,
    create: bool = False,
) -> T:
    """Run `work` against the configured database (migrated first); domain errors exit 1.

    Only `create` (`db upgrade`; `serve` and `worker` open theirs themselves) makes a database
    where there is none: any other command run from the wrong directory would otherwise make
    an empty one and hand out keys the server has never heard of. It exits 2 naming where it
    looked. A command that wrote says to which database, on stderr.
    """
    settings = settings or cli_settings()
    url = settings.resolved_database_url

    async def run() -> T:
        db = Database(url)
        try:
            if create:
                settings.data_dir.mkdir(parents=True, exist_ok=True)
            elif not await db.has_schema():
                print_error(
                    f"no vidrelay database at {database_label(url)}; point to the server's "
                    f"with {WHERE_THE_DATA_IS} (only serve, worker and db upgrade create one)"
                )
                raise typer.Exit(2)
            await db.upgrade()
            return await work(db)
        finally:
            await db.dispose()
            if db.committed_writes:
                err.print(f"wrote to database {escape(database_label(url))}", soft_wrap=True)

    try:
        return asyncio.run(run())
    except VidrelayError as error:
        raise fail(error) from error


def print_error(message: str) -> None:
    """One line on stderr, however long: scripts and tests count lines, and a message may hold
    brackets (`models[0]`) that are not markup."""
    err.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)


def fail(error: VidrelayError) -> typer.Exit:
    """Print a domain error the way every command does; raise what this returns."""
    print_error(error.message)
    return typer.Exit(1)


def parse_usd(value: str, *, allow_negative: bool = False) -> int:
    try:
        micros = usd_to_micros(Decimal(value))
    except (InvalidOperation, ValueError) as error:
        raise typer.BadParameter(f"{value!r} is not an amount in USD") from error
    if micros < 0 and not allow_negative:
        raise typer.BadParameter("the amount cannot be negative")
    return micros


def when(timestamp: int | None) -> str:
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M")
