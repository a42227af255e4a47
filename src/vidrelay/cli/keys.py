"""`vidrelay keys`: create, list and revoke API keys."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from vidrelay.cli.common import parse_usd, when, with_database
from vidrelay.domain.jobs import StatusStyle
from vidrelay.domain.limits import Limits
from vidrelay.domain.pricing import micros_to_usd
from vidrelay.store import accounts
from vidrelay.store.database import Database

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant name; created if it does not exist.")],
    balance: Annotated[
        str | None, typer.Option(help="USD to credit to the tenant (a ledger top-up).")
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
    micros = parse_usd(balance) if balance is not None else 0
    spend_limit_micros = parse_usd(spend_limit) if spend_limit is not None else None

    async def work(db: Database) -> tuple[str, str, int]:
        async with db.write() as conn:
            found = await accounts.ensure_tenant(conn, tenant)
            if micros:
                await accounts.top_up(conn, found.id, micros, "keys create --balance")
            key_id, key = await accounts.create_key(
                conn,
                found.id,
                status_style,
                limits=Limits(rpm=rpm, max_in_flight=max_in_flight),
                spend_limit_micros=spend_limit_micros,
            )
            return key_id, key, await accounts.tenant_balance(conn, found.id)

    key_id, key, tenant_balance = with_database(work)
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
    for key in with_database(work):
        table.add_row(key.id, key.tenant_name, key.hint, when(key.created_at), when(key.revoked_at))
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(key_or_id: Annotated[str, typer.Argument(help="The key, or its key id.")]) -> None:
    """Revoke a key: requests with it get 401 from now on."""

    async def work(db: Database) -> str:
        async with db.write() as conn:
            return await accounts.revoke_key(conn, key_or_id)

    typer.echo(f"revoked {with_database(work)}")
