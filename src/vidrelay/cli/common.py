"""What every `vidrelay` subcommand shares: running store work, money parsing, formatting."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import TypeVar

import typer
from rich.console import Console

from vidrelay.domain.errors import VidrelayError
from vidrelay.domain.pricing import usd_to_micros
from vidrelay.settings import Settings, load_settings
from vidrelay.store.database import Database

err = Console(stderr=True, soft_wrap=True)  # messages name paths and commands: never cut them
T = TypeVar("T")


def with_database(work: Callable[[Database], Awaitable[T]], settings: Settings | None = None) -> T:
    """Run `work` against the configured database (migrated first); domain errors exit 1."""
    settings = settings or load_settings()

    async def run() -> T:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        try:
            await db.upgrade()
            return await work(db)
        finally:
            await db.dispose()

    try:
        return asyncio.run(run())
    except VidrelayError as error:
        raise fail(error) from error


def fail(error: VidrelayError) -> typer.Exit:
    """Print a domain error the way every command does; raise what this returns."""
    err.print(f"[red]error:[/red] {error.message}")
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
