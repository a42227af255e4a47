"""`vidrelay`: serve the API, run migrations, and generate a video from a shell; the other
command groups live beside this file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from sqlalchemy.engine import make_url

from vidrelay.cli.channels import channels_app
from vidrelay.cli.common import err, with_database
from vidrelay.cli.keys import keys_app
from vidrelay.cli.models import models_app
from vidrelay.cli.prices import groups_app, prices_app
from vidrelay.cli.tenants import ledger, tenants_app
from vidrelay.cli.webhooks import webhooks_app
from vidrelay.settings import load_settings
from vidrelay.store.database import Database

app = typer.Typer(
    help="vidrelay: the OpenAI Videos API in front of many upstreams.", no_args_is_help=True
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(tenants_app, name="tenants")
app.add_typer(models_app, name="models")
app.add_typer(prices_app, name="prices")
app.add_typer(groups_app, name="groups")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(channels_app, name="channels")
app.add_typer(db_app, name="db")
app.command("ledger")(ledger)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the API server (applies migrations, starts the job runner and the local renderer)."""
    from vidrelay.api.app import create_app
    from vidrelay.api.http_server import run_server

    settings = load_settings()
    run_server(create_app(settings), settings, host, port)


@app.command()
def worker() -> None:
    """Run the engine alone (job runner, webhook sender), no HTTP: pair it with API servers
    started with VIDRELAY_ENGINE=false. Stops cleanly on SIGINT or SIGTERM."""
    import asyncio
    import signal

    from vidrelay.engine.background import Engine, open_instance
    from vidrelay.logging_setup import configure_logging

    configure_logging()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        instance = await open_instance(load_settings())
        engine = Engine(instance)
        engine.start()
        err.print(f"vidrelay worker {engine.runner.worker_id}: running jobs")
        try:
            await stop.wait()
        finally:
            await engine.stop()
            await instance.db.dispose()

    asyncio.run(run())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations up to the latest schema."""

    async def noop(_db: Database) -> None:
        return None

    settings = load_settings()
    with_database(noop, settings)
    typer.echo(f"database is up to date ({_redacted(settings.resolved_database_url)})")


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
            response = client.get(f"/v1/videos/{video['id']}")
            video = _checked(response)
            delay_ms = int(response.headers.get("openai-poll-after-ms", "1000"))
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


def _redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
