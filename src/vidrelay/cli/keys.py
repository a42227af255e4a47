"""`vidrelay keys`: create, list and revoke API keys (through `services/keys.py`, as the admin
API does)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vidrelay.cli.common import parse_usd, when, with_database
from vidrelay.domain.audit import CLI
from vidrelay.domain.jobs import StatusStyle
from vidrelay.domain.keys import KeySpec
from vidrelay.domain.limits import Limits
from vidrelay.domain.pricing import dollars
from vidrelay.services import keys as key_service
from vidrelay.store.accounts import KeyInfo
from vidrelay.store.database import Database

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


def parse_expiry(value: str) -> int:
    """Unix seconds, or an ISO 8601 date or date-time (UTC unless it names an offset)."""
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise typer.BadParameter(
            f"{value!r} is neither Unix seconds nor an ISO date (2027-01-31, 2027-01-31T18:00:00Z)"
        ) from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant name.")],
    create_tenant: Annotated[
        bool, typer.Option(help="Create the tenant if it does not exist (the default).")
    ] = True,
    balance: Annotated[
        str | None, typer.Option(help="USD to credit to the tenant (a ledger top-up).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="A name for the key, to tell it apart.")] = None,
    expires_at: Annotated[
        str | None,
        typer.Option(help="When the key stops working: Unix seconds or an ISO date (UTC)."),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(help="A model the key may use (repeat it); default: every model."),
    ] = None,
    rpm: Annotated[int | None, typer.Option(help="Create requests per minute.", min=1)] = None,
    max_in_flight: Annotated[
        int | None, typer.Option(help="Jobs queued or running at once.", min=1)
    ] = None,
    spend_limit: Annotated[
        str | None, typer.Option(help="USD this key may spend in all (net of refunds).")
    ] = None,
    status_style: Annotated[
        StatusStyle | None,
        typer.Option(help="Status vocabulary for this key (default: negotiated per request)."),
    ] = None,
) -> None:
    """Create an API key. The last line printed is the key alone (shown once, stored hashed)."""
    spec = KeySpec(
        name=name,
        expires_at=parse_expiry(expires_at) if expires_at is not None else None,
        models=tuple(model) if model else None,
        status_style=status_style,
        limits=Limits(rpm=rpm, max_in_flight=max_in_flight),
        spend_limit_micros=parse_usd(spend_limit) if spend_limit is not None else None,
    )
    top_up = parse_usd(balance) if balance is not None else 0

    async def work(db: Database) -> key_service.IssuedKey:
        return await key_service.create_key(
            db, tenant, spec, create_tenant=create_tenant, top_up_micros=top_up, actor=CLI
        )

    issued = with_database(work)
    typer.echo(f"tenant {tenant}: balance {dollars(issued.tenant_balance_micros)}")
    typer.echo(f"key id {issued.info.id} (store the key now: it is shown only once)")
    typer.echo(issued.key)


@keys_app.command("list")
def keys_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
) -> None:
    """List keys (never the keys themselves: a hint of each)."""

    async def work(db: Database) -> list[KeyInfo]:
        return await key_service.list_keys(db, tenant)

    table = Table("id", "tenant", "name", "key", "models", "created", "expires", "revoked")
    for key in with_database(work):
        table.add_row(
            key.id,
            key.tenant_name,
            key.name or "",
            key.hint,
            ", ".join(key.models) if key.models is not None else "all",
            when(key.created_at),
            when(key.expires_at),
            when(key.revoked_at),
        )
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(key_or_id: Annotated[str, typer.Argument(help="The key, or its key id.")]) -> None:
    """Revoke a key: requests with it get 401 from now on."""

    async def work(db: Database) -> KeyInfo:
        return await key_service.revoke_key(db, key_or_id, actor=CLI)

    typer.echo(f"revoked {with_database(work).id}")
