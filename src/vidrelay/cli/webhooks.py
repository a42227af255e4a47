"""`vidrelay webhooks`: a tenant's webhook endpoints, from the operator's shell."""

from __future__ import annotations

from typing import Annotated

import typer

from vidrelay.cli.common import cli_settings, fail, when, with_database
from vidrelay.domain.errors import VidrelayError
from vidrelay.domain.webhooks import EventType
from vidrelay.outbound import check_url_at_create
from vidrelay.store import accounts
from vidrelay.store import webhooks as webhook_store
from vidrelay.store.database import Database

webhooks_app = typer.Typer(help="Tenants' webhook endpoints.", no_args_is_help=True)


@webhooks_app.command("add")
def webhooks_add(
    url: str,
    tenant: Annotated[str, typer.Option(help="The tenant whose events go to URL.")],
    event: Annotated[
        list[EventType] | None, typer.Option(help="Event type (repeatable); default: all.")
    ] = None,
) -> None:
    """Register URL for a tenant's video events; prints the endpoint id."""
    settings = cli_settings()
    try:
        check_url_at_create(url, param="url", allowlist=settings.outbound_allowlist_entries)
    except VidrelayError as error:
        raise fail(error) from error
    event_types = tuple(dict.fromkeys(e.value for e in (event or list(EventType))))

    async def work(db: Database) -> str:
        async with db.write() as conn:
            found = await accounts.tenant_summary(conn, tenant)
            return (await webhook_store.create_endpoint(conn, found.id, url, event_types)).id

    typer.echo(with_database(work, settings))


@webhooks_app.command("list")
def webhooks_list(tenant: Annotated[str, typer.Option(help="Tenant name.")]) -> None:
    """A tenant's endpoints, one per line: id, URL, event types, created (tab-separated)."""

    async def work(db: Database) -> list[webhook_store.Endpoint]:
        async with db.read() as conn:
            found = await accounts.tenant_summary(conn, tenant)
            return await webhook_store.list_endpoints(conn, found.id)

    for endpoint in with_database(work):
        fields = (endpoint.id, endpoint.url, ",".join(endpoint.event_types))
        typer.echo("\t".join((*fields, when(endpoint.created_at))))


@webhooks_app.command("remove")
def webhooks_remove(
    endpoint_id: str, tenant: Annotated[str, typer.Option(help="Tenant name.")]
) -> None:
    """Stop sending a tenant's events to an endpoint."""

    async def work(db: Database) -> None:
        async with db.write() as conn:
            found = await accounts.tenant_summary(conn, tenant)
            await webhook_store.delete_endpoint(conn, found.id, endpoint_id)

    with_database(work)
    typer.echo(f"removed {endpoint_id}")
