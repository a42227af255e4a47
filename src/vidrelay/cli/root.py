"""`vidrelay`: serve the API, run migrations, and generate a video from a shell; the other
command groups live beside this file."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from vidrelay.cli.channels import channels_app
from vidrelay.cli.common import cli_settings, err, load_run_settings, with_database
from vidrelay.cli.keys import keys_app
from vidrelay.cli.models import models_app
from vidrelay.cli.prices import groups_app, prices_app
from vidrelay.cli.tenants import ledger, tenants_app
from vidrelay.cli.webhooks import webhooks_app
from vidrelay.store.database import Database, database_label

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


@app.callback()
def root(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="The data directory (SQLite file and media) every command uses; "
            "default: VIDRELAY_DATA_DIR, else ./vidrelay-data. VIDRELAY_DATABASE_URL, "
            "when set, names the database instead.",
            file_okay=False,
        ),
    ] = None,
) -> None:
    load_run_settings(data_dir)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the API server (applies migrations, starts the job runner and the local renderer)."""
    import asyncio

    import uvicorn

    from vidrelay.api.app import create_app
    from vidrelay.engine.background import open_instance, served_root
    from vidrelay.logging_setup import configure_logging

    settings = cli_settings()
    configure_logging()

    async def run() -> None:
        # The instance opens before uvicorn starts, so that a bad config file stops the start
        # with one line (`vidrelay.cli.main`) instead of uvicorn's startup traceback.
        instance = await open_instance(settings, served_url=served_root(host, port))
        app = create_app(settings, instance=instance)
        server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info"))
        await server.serve()
        if not server.started:
            raise typer.Exit(3)  # as uvicorn.run: stopped before it started

    # the event loop uvicorn.run would pick (uvloop when installed)
    loop_factory = uvicorn.Config(create_app).get_loop_factory()
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(run())


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
        instance = await open_instance(cli_settings(), serves_http=False)
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

    settings = cli_settings()
    with_database(noop, settings, create=True)
    err.print(
        f"database is up to date ({database_label(settings.resolved_database_url)})",
        soft_wrap=True,
        markup=False,
    )


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
    settings = cli_settings()
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
