"""`vidrelay`: serve the API, run migrations, and generate a video from a shell; the other
command groups live beside this file."""

from __future__ import annotations

import signal
from typing import Annotated

import typer
from sqlalchemy.engine import make_url

from vidrelay.cli.channels import channels_app
from vidrelay.cli.common import err, with_database
from vidrelay.cli.generate import generate
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
app.command()(generate)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
) -> None:
    """Run the API server (applies migrations, starts the job runner and the local renderer)."""
    from vidrelay.api.app import create_app
    from vidrelay.api.http_server import run_server
    from vidrelay.engine.background import served_root

    settings = load_settings()
    run_server(create_app(settings, served_url=served_root(host, port)), settings, host, port)


@app.command()
def worker() -> None:
    """Run the engine alone (job runner, webhook sender), no HTTP: pair it with API servers
    started with VIDRELAY_ENGINE=false. Stops cleanly on SIGINT or SIGTERM."""
    import asyncio

    from vidrelay.engine.background import Engine, open_instance
    from vidrelay.logging_setup import configure_logging
    from vidrelay.startup import log_startup

    configure_logging()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        instance = await open_instance(load_settings(), serves_http=False)
        engine = Engine(instance)
        await log_startup(instance, role="worker", runs_engine=True)
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


def _redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)
