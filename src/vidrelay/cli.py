"""`vidrelay`: serve the API, manage keys, run migrations, and generate a video from a shell."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from vidrelay.domain.errors import VidrelayError
from vidrelay.domain.jobs import StatusStyle
from vidrelay.domain.pricing import micros_to_usd, usd_to_micros
from vidrelay.settings import Settings, load_settings
from vidrelay.store import accounts
from vidrelay.store.database import Database

app = typer.Typer(
    help="vidrelay: the OpenAI Videos API in front of many upstreams.", no_args_is_help=True
)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(db_app, name="db")
err = Console(stderr=True)
T = TypeVar("T")


def _with_database(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
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
        err.print(f"[red]error:[/red] {error.message}")
        raise typer.Exit(1) from error


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the API server (applies migrations, starts the job runner and the local renderer)."""
    import uvicorn

    from vidrelay.api.app import create_app

    uvicorn.run(create_app(load_settings()), host=host, port=port, log_level="info")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations up to the latest schema."""

    async def noop(_db: Database) -> None:
        return None

    settings = load_settings()
    _with_database(settings, noop)
    typer.echo(f"database is up to date ({_redacted(settings.resolved_database_url)})")


def _parse_usd(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        micros = usd_to_micros(Decimal(value))
    except (InvalidOperation, ValueError) as error:
        raise typer.BadParameter(f"{value!r} is not an amount in USD") from error
    if micros < 0:
        raise typer.BadParameter("the balance cannot be negative")
    return micros


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant name; created if it does not exist.")],
    balance: Annotated[
        str | None,
        typer.Option(help="USD to credit to the tenant (a ledger top-up)."),
    ] = None,
    status_style: Annotated[
        StatusStyle | None,
        typer.Option(help="Status vocabulary for this key (default: negotiated per request)."),
    ] = None,
) -> None:
    """Create an API key. The last line printed is the key alone (shown once, stored hashed)."""
    micros = _parse_usd(balance)

    async def work(db: Database) -> tuple[str, str, int]:
        async with db.write() as conn:
            found = await accounts.ensure_tenant(conn, tenant)
            if micros:
                await accounts.top_up(conn, found.id, micros, "keys create --balance")
            key_id, key = await accounts.create_key(conn, found.id, status_style)
            return key_id, key, await accounts.tenant_balance(conn, found.id)

    key_id, key, tenant_balance = _with_database(load_settings(), work)
    typer.echo(f"tenant {tenant}: balance ${micros_to_usd(tenant_balance)}")
    typer.echo(f"key id {key_id} (store the key now: it is shown only once)")
    typer.echo(key)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (never the keys themselves: a hint of each)."""

    async def work(db: Database) -> list[accounts.KeyInfo]:
        async with db.read() as conn:
            return await accounts.list_keys(conn)

    table = Table("id", "tenant", "key", "created", "revoked")
    for key in _with_database(load_settings(), work):
        table.add_row(
            key.id, key.tenant_name, key.hint, _when(key.created_at), _when(key.revoked_at)
        )
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(key_or_id: Annotated[str, typer.Argument(help="The key, or its key id.")]) -> None:
    """Revoke a key: requests with it get 401 from now on."""

    async def work(db: Database) -> str:
        async with db.write() as conn:
            return await accounts.revoke_key(conn, key_or_id)

    typer.echo(f"revoked {_with_database(load_settings(), work)}")


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="What the video shows.")],
    model: Annotated[str | None, typer.Option(help="sora-2 (default) or sora-2-pro.")] = None,
    seconds: Annotated[
        str | None, typer.Option(help="Length; the model's default if omitted.")
    ] = None,
    size: Annotated[str, typer.Option(help="WIDTHxHEIGHT.")] = "720x1280",
    input_reference: Annotated[
        Path | None, typer.Option(help="A JPEG, PNG or WebP image to start from.", exists=True)
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Where to save the MP4.")
    ] = None,
    api_key: Annotated[str | None, typer.Option(help="Overrides VIDRELAY_API_KEY.")] = None,
    base_url: Annotated[str | None, typer.Option(help="Overrides VIDRELAY_BASE_URL.")] = None,
) -> None:
    """Create a video on a running server, follow its progress, and download it."""
    settings = load_settings()
    key = api_key or settings.api_key
    if not key:
        err.print(
            "[red]error:[/red] set VIDRELAY_API_KEY (or --api-key) "
            "to a key from `vidrelay keys create`"
        )
        raise typer.Exit(2)
    root = (base_url or settings.base_url).rstrip("/")
    fields = {"prompt": prompt, "size": size, "model": model, "seconds": seconds}
    data = {name: value for name, value in fields.items() if value is not None}
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=root, headers=headers, timeout=60) as client:
        files: dict[str, Any] | None = None
        if input_reference is not None:
            files = {"input_reference": (input_reference.name, input_reference.read_bytes())}
        try:
            video = _checked(client.post("/v1/videos", data=data, files=files))
        except httpx.HTTPError as error:
            err.print(f"[red]error:[/red] cannot reach {root}: {error}")
            raise typer.Exit(1) from error
        video = _follow(client, video)
        if video["status"] != "completed":
            failure = video.get("error") or {}
            err.print(f"[red]failed:[/red] {failure.get('message', 'the video failed')}")
            raise typer.Exit(1)
        target = output or Path(f"{video['id']}.mp4")
        with client.stream("GET", f"/v1/videos/{video['id']}/content") as response:
            if response.status_code != 200:
                response.read()
                _checked(response)
            with target.open("wb") as file:
                for chunk in response.iter_bytes():
                    file.write(chunk)
    typer.echo(f"{video['id']} saved to {target}")


def _follow(client: httpx.Client, video: dict[str, Any]) -> dict[str, Any]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err) as progress:
        task = progress.add_task(f"{video['id'][:18]}… {video['status']}", total=100)
        while video["status"] not in ("completed", "failed"):
            progress.update(task, completed=video.get("progress", 0), description=video["status"])
            delay_ms = 1000
            response = client.get(f"/v1/videos/{video['id']}")
            video = _checked(response)
            delay_ms = int(response.headers.get("openai-poll-after-ms", delay_ms))
            if video["status"] not in ("completed", "failed"):
                time.sleep(delay_ms / 1000)
        progress.update(task, completed=video.get("progress", 100), description=video["status"])
    return video


def _checked(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text
        err.print(f"[red]error {response.status_code}:[/red] {message}")
        raise typer.Exit(1)
    body: dict[str, Any] = response.json()
    return body


def _when(timestamp: int | None) -> str:
    if timestamp is None:
        return ""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M")


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
