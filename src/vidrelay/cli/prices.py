"""`vidrelay prices` and `vidrelay groups`: what a video costs, and tenant-group multipliers."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vidrelay.cli.common import parse_usd, with_database
from vidrelay.domain.audit import CLI
from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.errors import VidrelayError
from vidrelay.domain.pricing import (
    PriceDeclaration,
    PriceRule,
    SizeClass,
    dollars,
    multiplier_text,
    parse_conditions,
)
from vidrelay.services import catalog as catalog_service
from vidrelay.services import tenants as tenant_service
from vidrelay.store import accounts, prices
from vidrelay.store.database import Database

prices_app = typer.Typer(help="Price rules per model, route class, size class and parameter value.")
groups_app = typer.Typer(help="Tenant groups and their price multipliers.", no_args_is_help=True)


@prices_app.command("list")
def prices_list() -> None:
    """The price rules in force (the most specific matching rule prices a request)."""

    async def work(db: Database) -> tuple[list[PriceRule], dict[str, int]]:
        async with db.read() as conn:
            return await prices.price_rules_for(conn), await accounts.list_groups(conn)

    rules, groups = with_database(work)
    table = Table()
    table.add_column("model", no_wrap=True)
    table.add_column("route class")
    table.add_column("size class")
    table.add_column("when", no_wrap=True)
    table.add_column("per second")
    table.add_column("per request")
    for rule in rules:
        table.add_row(
            rule.model,
            rule.route_class.value if rule.route_class else "any",
            rule.size_class.value if rule.size_class else "any",
            " ".join(f"{name}={value}" for name, value in rule.conditions) or "any",
            _usd_or_blank(rule.per_second_micros),
            _usd_or_blank(rule.per_request_micros),
        )
    console = Console()
    console.print(table)
    group_table = Table("group", "multiplier")
    for name, ppm in sorted(groups.items()):
        group_table.add_row(name, multiplier_text(ppm))
    console.print(group_table)


@prices_app.command("set")
def prices_set(
    model: str,
    per_second: Annotated[str | None, typer.Option(help="USD per second of video.")] = None,
    per_request: Annotated[str | None, typer.Option(help="USD per video, any length.")] = None,
    route_class: Annotated[RouteClass | None, typer.Option(help="Default: any.")] = None,
    size_class: Annotated[
        SizeClass | None,
        typer.Option(help="standard (up to 1280x720) or high (more pixels). Default: any."),
    ] = None,
    when: Annotated[
        list[str] | None,
        typer.Option(help="A condition on a declared parameter, NAME=VALUE (repeatable)."),
    ] = None,
) -> None:
    """Set the price of a model (for one route class, size class or parameter value, or for
    all); the most specific matching rule prices a request."""
    if (per_second is None) == (per_request is None):
        raise typer.BadParameter("give exactly one of --per-second and --per-request")
    declaration = PriceDeclaration(
        model,
        route_class,
        size_class,
        per_second_micros=parse_usd(per_second) if per_second is not None else None,
        per_request_micros=parse_usd(per_request) if per_request is not None else None,
        when=_conditions(when),
    )

    async def work(db: Database) -> None:
        await catalog_service.set_price(db, declaration, actor=CLI)

    with_database(work)
    typer.echo("price set; jobs accepted from now on use it (accepted jobs keep their price)")


@prices_app.command("remove")
def prices_remove(
    model: str,
    route_class: Annotated[RouteClass | None, typer.Option(help="Default: any.")] = None,
    size_class: Annotated[SizeClass | None, typer.Option(help="Default: any.")] = None,
    when: Annotated[
        list[str] | None, typer.Option(help="The rule's condition NAME=VALUE (repeatable).")
    ] = None,
) -> None:
    """Delete the price rule with exactly these route class, size class and conditions."""
    declaration = PriceDeclaration(model, route_class, size_class, when=_conditions(when))

    async def work(db: Database) -> None:
        await catalog_service.delete_price(db, declaration, actor=CLI)

    with_database(work)
    typer.echo("price rule removed")


def _conditions(written: list[str] | None) -> dict[str, str]:
    try:
        return parse_conditions(written or [])
    except VidrelayError as error:
        raise typer.BadParameter(error.message) from error


@groups_app.command("set")
def groups_set(
    name: str,
    multiplier: Annotated[str, typer.Argument(help="e.g. 0.8 for 20% off, 1.5 for +50%.")],
) -> None:
    """Create or change a tenant group's price multiplier."""

    async def work(db: Database) -> int:
        return await tenant_service.set_group(db, name, multiplier, actor=CLI)

    ppm = with_database(work)
    typer.echo(f"group {name}: multiplier {multiplier_text(ppm)}")


def _usd_or_blank(micros: int | None) -> str:
    return "" if micros is None else dollars(micros)
