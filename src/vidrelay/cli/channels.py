"""`vidrelay channels`: the operator's upstream channels, from the shell.

Works on the database like every command; a running server sees a change within
`VIDRELAY_CHANNEL_REFRESH_S`. When `VIDRELAY_CONFIG` names a file, its channels are applied
first, so a channel just written into `vidrelay.toml` can be tested before the server starts.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vidrelay.channel_admin import channel_view, probe_view
from vidrelay.cli.common import cli_settings, parse_usd, with_database
from vidrelay.config_file import apply_config, load_config
from vidrelay.domain.audit import CLI
from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.channels import Channel, ChannelError, ChannelProtocol
from vidrelay.services import channels as channel_service
from vidrelay.settings import Settings
from vidrelay.store import channels as channel_store
from vidrelay.store import jobs as job_store
from vidrelay.store.breakers import open_breaker_store
from vidrelay.store.database import Database
from vidrelay.upstreams.base import ProbeResult

channels_app = typer.Typer(help="Upstream channels: where jobs run.", no_args_is_help=True)


async def _apply_config_file(db: Database, settings: Settings) -> None:
    if settings.config is not None:
        await apply_config(db, load_config(settings.config))


@channels_app.command("add")
def channels_add(
    name: str,
    protocol: Annotated[ChannelProtocol, typer.Option(help="The upstream's wire protocol.")],
    base_url: Annotated[str, typer.Option(help="e.g. https://api.openai.com")] = "",
    key: Annotated[list[str] | None, typer.Option(help="An upstream key (repeatable).")] = None,
    route_class: Annotated[RouteClass | None, typer.Option(help="official or reverse.")] = None,
    model: Annotated[list[str] | None, typer.Option(help="A model served (repeatable).")] = None,
    map_model: Annotated[
        list[str] | None, typer.Option("--map", help="MODEL=UPSTREAM_MODEL (repeatable).")
    ] = None,
    priority: Annotated[int, typer.Option(help="Higher tiers are tried first.")] = 0,
    weight: Annotated[int, typer.Option(help="Share of traffic inside its tier.")] = 1,
    max_concurrency: Annotated[int, typer.Option(help="Jobs running on it at once.")] = 50,
    cost_per_second: Annotated[
        str, typer.Option(help="USD the upstream charges per second (for margins).")
    ] = "0",
    disabled: Annotated[bool, typer.Option(help="Add it switched off.")] = False,
    replace: Annotated[bool, typer.Option(help="Overwrite a channel of that name.")] = False,
) -> None:
    """Declare a channel (or, with --replace, redefine one)."""
    model_map: dict[str, str] = {}
    for pair in map_model or []:
        source, sep, target = pair.partition("=")
        if not sep or not source or not target:
            raise typer.BadParameter(f"--map wants MODEL=UPSTREAM_MODEL, got {pair!r}")
        model_map[source] = target
    try:
        channel = Channel(
            name=name,
            protocol=protocol,
            route_class=route_class,
            models=tuple(model or ()),
            base_url=base_url,
            keys=tuple(key or ()),
            model_map=model_map,
            priority=priority,
            weight=weight,
            max_concurrency=max_concurrency,
            enabled=not disabled,
            cost_per_second_micros=parse_usd(cost_per_second),
        ).validate(None)
    except ChannelError as error:
        raise typer.BadParameter(str(error)) from error

    async def work(db: Database) -> None:
        await channel_service.declare_channel(db, channel, actor=CLI, replace=replace)

    with_database(work)
    typer.echo(name)


@channels_app.command("list")
def channels_list(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Every declared channel, its state and the jobs running on it (keys as hints)."""
    settings = cli_settings()

    async def work(db: Database) -> tuple[list[Channel], dict[str, int]]:
        await _apply_config_file(db, settings)
        async with db.read() as conn:
            return (
                await channel_store.list_channels(conn),
                await job_store.in_progress_by_channel(conn),
            )

    declared, running = with_database(work, settings)
    views = [channel_view(channel, running.get(channel.name, 0)) for channel in declared]
    if as_json:
        typer.echo(json.dumps(views, indent=2))
        return
    if not views:
        typer.echo("No channel declared: the built-in local renderer serves every request.")
        return
    table = Table(
        "name", "protocol", "base URL", "keys", "route", "models", "prio", "weight", "running",
        "state",
    )  # fmt: skip
    for view in views:
        state = view["status"]
        if view["disabled_reason"]:
            state += f": {view['disabled_reason']}"
        table.add_row(
            view["name"],
            view["protocol"],
            view["base_url"] or "-",
            ", ".join(view["keys"]) or "-",
            view["route_class"] or "any",
            ",".join(view["models"]) or "all",
            str(view["priority"]),
            str(view["weight"]),
            f"{view['running_jobs']}/{view['max_concurrency']}",
            state,
        )
    Console().print(table)


def _switch(name: str, enabled: bool) -> None:
    async def work(db: Database) -> None:
        breakers = open_breaker_store(cli_settings(), db)
        try:
            await channel_service.switch_channel(db, breakers, name, enabled, actor=CLI)
        finally:
            await breakers.close()

    with_database(work)
    typer.echo(f"{name}: {'enabled' if enabled else 'disabled'}")


@channels_app.command("enable")
def channels_enable(name: str) -> None:
    """Switch a channel on (also clears an automatic disable and resets its breakers)."""
    _switch(name, True)


@channels_app.command("disable")
def channels_disable(name: str) -> None:
    """Switch a channel off: no new jobs go there; running ones finish there."""
    _switch(name, False)


@channels_app.command("remove")
def channels_remove(name: str) -> None:
    """Delete a channel that has no job running on it."""

    async def work(db: Database) -> None:
        await channel_service.delete_channel(db, name, actor=CLI)

    with_database(work)
    typer.echo(f"{name}: removed")


@channels_app.command("test")
def channels_test(
    name: str,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Check reachability and every key's auth, submitting nothing billable.

    Exits 0 only when the channel is healthy (reachable, every key accepted).
    """
    settings = cli_settings()

    async def work(db: Database) -> ProbeResult:
        await _apply_config_file(db, settings)
        return await channel_service.test_channel(db, name, settings, actor=CLI)

    result = with_database(work, settings)
    if as_json:
        typer.echo(json.dumps({"name": name, **probe_view(result)}, indent=2))
    else:
        typer.echo(
            f"{name}: {'reachable' if result.reachable else 'unreachable'} ({result.detail})"
        )
        for probe in result.keys:
            typer.echo(
                f"  key {probe.key_hint}: {'ok' if probe.ok else 'refused'} ({probe.detail})"
            )
        typer.echo("healthy" if result.healthy else "unhealthy")
    raise typer.Exit(0 if result.healthy else 1)
