"""`vidrelay models`: the catalog from the shell (what clients may send as `model`).

Works on the database like every command; a running server sees a change within
`VIDRELAY_CHANNEL_REFRESH_S`.
"""

from __future__ import annotations

import json
import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from vidrelay.cli.common import err, with_database
from vidrelay.config_file import ConfigError, parse_models
from vidrelay.domain.audit import CLI
from vidrelay.domain.catalog import ModelSpec
from vidrelay.domain.channels import Channel, served_routes
from vidrelay.domain.declarations import model_declaration
from vidrelay.domain.pricing import usd_text
from vidrelay.services import catalog as catalog_service
from vidrelay.shipped_models import ShippedModel, shipped_models
from vidrelay.store import channels as channel_store
from vidrelay.store import models as model_store
from vidrelay.store.database import Database

models_app = typer.Typer(
    help="The catalog: models, their routes, sizes and parameters.", no_args_is_help=True
)


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
        return await catalog_service.declare_models(db, models, actor=CLI)

    for model, created in zip(models, with_database(work), strict=True):
        typer.echo(f"{model.name}: {'declared' if created else 'updated'}")


@models_app.command("remove")
def models_remove(name: str) -> None:
    """Remove a model (refused while a channel lists it or a job for it is unfinished)."""

    async def work(db: Database) -> int:
        return await catalog_service.remove_model(db, name, actor=CLI)

    removed_rules = with_database(work)
    typer.echo(f"{name}: removed, with {removed_rules} price rules")


@models_app.command("available")
def models_available(
    protocol: Annotated[str | None, typer.Option(help="Only this protocol's models.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Today's models, shipped with vidrelay: what `vidrelay models import` declares."""
    entries = [e for e in shipped_models() if protocol in (None, e.protocol.value)]
    if as_json:
        typer.echo(json.dumps([_shipped_view(entry) for entry in entries], indent=2))
        return
    table = Table()
    table.add_column("model", no_wrap=True)
    for column in ("protocol", "upstream model", "seconds", "sizes", "list USD/s", "checked"):
        table.add_column(column)
    for entry in entries:
        table.add_row(
            entry.model.name,
            entry.protocol.value,
            entry.upstream_model,
            "; ".join(route.allowed_text() for route in entry.model.routes),
            ", ".join(entry.model.sizes),
            ", ".join(usd_text(p.per_second_micros or 0) for p in entry.list_prices),
            entry.checked.isoformat(),
        )
    Console().print(table)


@models_app.command("import")
def models_import(
    names: Annotated[list[str], typer.Argument(help="Shipped models (see `models available`).")],
    markup: Annotated[
        str, typer.Option(help="Selling price = the provider's list price x MARKUP.")
    ] = "1",
) -> None:
    """Declare shipped models and price them from the provider's list price (all or none)."""
    by_name = {entry.model.name: entry for entry in shipped_models()}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        err.print(
            f"[red]error:[/red] not shipped: {', '.join(unknown)}; "
            "`vidrelay models available` lists what is"
        )
        raise typer.Exit(1)
    try:
        factor = Decimal(markup)
    except InvalidOperation as error:
        raise typer.BadParameter(f"{markup!r} is not a number") from error
    if not factor.is_finite() or factor <= 0:
        raise typer.BadParameter("the markup must be a positive number")
    entries = [by_name[name] for name in names]

    async def work(db: Database) -> list[bool]:
        return await catalog_service.import_models(db, entries, factor, actor=CLI)

    for entry, created in zip(entries, with_database(work), strict=True):
        typer.echo(f"{entry.model.name}: {'declared' if created else 'updated'}")
    typer.echo("serve them with a channel of each protocol, e.g.:", err=True)
    for protocol in sorted({entry.protocol.value for entry in entries}):
        mapped = {e.model.name: e.upstream_model for e in entries if e.protocol.value == protocol}
        pairs = ", ".join(f"{json.dumps(name)} = {json.dumps(id_)}" for name, id_ in mapped.items())
        typer.echo(
            f'  protocol = "{protocol}"  models = {json.dumps(list(mapped))}  '
            f"model_map = {{ {pairs} }}",
            err=True,
        )


def _shipped_view(entry: ShippedModel) -> dict[str, Any]:
    return {
        **model_declaration(entry.model),
        "upstream": {
            "protocol": entry.protocol.value,
            "model": entry.upstream_model,
            "docs_url": entry.docs_url,
            "checked": entry.checked.isoformat(),
            "prices": [
                {"per_second_usd": usd_text(p.per_second_micros or 0), "when": dict(p.when)}
                for p in entry.list_prices
            ],
        },
    }
