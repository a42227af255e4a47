"""`vidrelay`: serve the API, run migrations, and generate a video from a shell; the other
command groups live beside this file."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path
from typing import Annotated

import typer

from vidrelay.cli.channels import channels_app
from vidrelay.cli.common import cli_settings, err, load_run_settings, with_database
from vidrelay.cli.generate import generate
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
app.command()(generate)


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
    from vidrelay.api.http_server import exit_cleanly_after_sigterm, server_config
    from vidrelay.engine.background import open_instance, served_root
    from vidrelay.logging_setup import configure_logging

    settings = cli_settings()
    configure_logging(settings.log_format)

    async def run() -> None:
        # The instance opens before uvicorn starts, so that a bad config file stops the start
        # with one line (`vidrelay.cli.main`) instead of uvicorn's startup traceback.
        instance = await open_instance(settings, served_url=served_root(host, port))
        app = create_app(settings, instance=instance)
        server = uvicorn.Server(server_config(app, settings, host, port))
        await server.serve()
        if not server.started:
            raise typer.Exit(3)  # as uvicorn.run: stopped before it started

    exit_cleanly_after_sigterm()
    # the event loop uvicorn.run would pick (uvloop when installed)
    loop_factory = uvicorn.Config(create_app).get_loop_factory()
    # uvicorn stops cleanly on SIGINT, then raises it again: that is the end, not an error
    with (
        asyncio.Runner(loop_factory=loop_factory) as runner,
        contextlib.suppress(KeyboardInterrupt),
    ):
        runner.run(run())


@app.command()
def worker() -> None:
    """Run the engine alone (job runner, webhook sender), no HTTP but /metrics on
    VIDRELAY_METRICS_PORT: pair it with API servers started with VIDRELAY_ENGINE=false. Stops
    cleanly on SIGINT or SIGTERM."""
    import asyncio

    from vidrelay.api.metrics import worker_metrics_server
    from vidrelay.engine.background import Engine, open_instance
    from vidrelay.logging_setup import configure_logging
    from vidrelay.metrics import ProcessMetrics
    from vidrelay.startup import log_startup

    settings = cli_settings()
    configure_logging(settings.log_format)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        instance = await open_instance(settings, serves_http=False)
        metrics = ProcessMetrics()
        metrics.watch_database(instance.db)
        engine = Engine(instance, metrics)
        await log_startup(instance, role="worker", runs_engine=True)
        async with contextlib.AsyncExitStack() as serving:
            if settings.metrics_port is not None:
                await serving.enter_async_context(
                    worker_metrics_server(
                        metrics,
                        settings.metrics_host,
                        settings.metrics_port,
                        settings.metrics_token,
                    )
                )
                err.print(
                    f"metrics: http://{settings.metrics_host}:{settings.metrics_port}/metrics",
                    markup=False,
                )
            engine.start()
            err.print(f"vidrelay worker {engine.runner.worker_id}: running jobs")
            try:
                await stop.wait()
            finally:
                await engine.stop()
                await instance.close()

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
