"""`vidrelay models`: the catalog from the shell (what clients may send as `model`).

Works on the database like every command; a running server sees a change within
`VIDRELAY_CHANNEL_REFRESH_S`.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from vidrelay.cli.common import err, with_database
from vidrelay.config_file import ConfigError, parse_models
from vidrelay.domain.catalog import ModelSpec
from vidrelay.domain.channels import Channel, served_routes
from vidrelay.domain.declarations import model_declaration
from vidrelay.services import catalog as catalog_service
from vidrelay.store import channels as channel_store
from vidrelay.store import models as model_store
from vidrelay.store.database import Database

models_app = typer.Typer(help="The catalog: models, their routes, sizes and parameters.")


@models_app.command("list")
def models_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every model of the catalog and where it runs now."""

    async def work(db: Database) -> tuple[list[ModelSpec], list[Channel]]:
        async with db.read() as conn:
            catalog = await model_store.load_catalog(conn)
            return list(catalog), await channel_store.list_channels(conn)

    models, declared = with_database(work)
    if as_json:
        views: list[dict[str, Any]] = [
            {
                **model_declaration(model),
                "served_route_classes": [
                    r.route_class.value for r in served_routes(declared, model)
                ],
            }
            for model in models
        ]
        typer.echo(json.dumps(views, indent=2))
        return
    table = Table()
    table.add_column("model", no_wrap=True)
    for column in ("routes (seconds)", "sizes", "params", "served"):
        table.add_column(column)
    for model in models:
        served = [route.route_class.value for route in served_routes(declared, model)]
        table.add_row(
            model.name,
            "; ".join(f"{r.route_class}: {r.allowed_text()}" for r in model.routes),
            ", ".join(model.sizes),
            ", ".join(f"{p.name} ({p.type})" for p in model.params),
            ", ".join(served) or "no",
        )
    Console().print(table)


@models_app.command("set")
def models_set(
    file: Annotated[Path, typer.Argument(help="A TOML file of [[models]] tables.", exists=True)],
) -> None:
    """Declare the [[models]] of FILE, or replace their declarations (upsert)."""
    try:
        models = parse_models(tomllib.loads(file.read_text()).get("models", []))
    except (OSError, tomllib.TOMLDecodeError, ConfigError) as error:
        err.print(f"[red]error:[/red] {file}: {error}")
        raise typer.Exit(1) from error
    if not models:
        err.print(f"[red]error:[/red] {file} declares no [[models]]")
        raise typer.Exit(1)

    async def work(db: Database) -> list[bool]:
        return await catalog_service.declare_models(db, models)

    for model, created in zip(models, with_database(work), strict=True):
        typer.echo(f"{model.name}: {'declared' if created else 'updated'}")


@models_app.command("remove")
def models_remove(name: str) -> None:
    """Remove a model (refused while a channel lists it or a job for it is unfinished)."""

    async def work(db: Database) -> int:
        return await catalog_service.remove_model(db, name)

    removed_rules = with_database(work)
    typer.echo(f"{name}: removed, with {removed_rules} price rules")
