"""`vidrelay webhooks`: a tenant's webhook endpoints, from the operator's shell."""

from __future__ import annotations

from typing import Annotated

import typer

from vidrelay.cli.common import cli_settings, when, with_database
from vidrelay.domain.audit import CLI
from vidrelay.domain.webhooks import EventType
from vidrelay.services import webhooks as webhook_service
from vidrelay.services.tenants import existing_tenant
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
    event_types = [e.value for e in event] if event else None

    async def work(db: Database) -> str:
        added = await webhook_service.add_endpoint(
            db,
            url,
            event_types,
            actor=CLI,
            allowlist=settings.outbound_allowlist_entries,
            tenant=tenant,
        )
        return added.endpoint.id

    typer.echo(with_database(work, settings))


@webhooks_app.command("list")
def webhooks_list(tenant: Annotated[str, typer.Option(help="Tenant name.")]) -> None:
    """A tenant's endpoints, one per line: id, URL, event types, created (tab-separated)."""

    async def work(db: Database) -> list[webhook_store.Endpoint]:
        async with db.read() as conn:
            found = await existing_tenant(conn, tenant)
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
        await webhook_service.remove_endpoint(db, endpoint_id, actor=CLI, tenant=tenant)

    with_database(work)
    typer.echo(f"removed {endpoint_id}")
