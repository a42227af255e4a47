"""A tenant's webhook endpoints and signing secret, and the operator's replay of a delivery.

The operator names the tenant; a tenant serving itself (`/v1/webhooks`) acts on its own, the
one its `Actor` carries. The secret leaves only in what `add_endpoint` and `rotate_secret`
return, never in the audit log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.domain.audit import Actor, url_for_audit
from vidrelay.domain.errors import InvalidRequest, NotFound
from vidrelay.domain.webhooks import EventType
from vidrelay.outbound import check_url_at_create
from vidrelay.services.tenants import existing_tenant
from vidrelay.services.wakeups import NOBODY, Wakeups
from vidrelay.store import accounts, audit
from vidrelay.store import webhooks as webhook_store
from vidrelay.store.database import Database

EVENT_TYPES = tuple(event.value for event in EventType)


@dataclass(frozen=True)
class AddedEndpoint:
    endpoint: webhook_store.Endpoint
    secret: str
    """The tenant's signing secret, for the tenant to verify what the endpoint receives."""


async def _tenant(conn: AsyncConnection, actor: Actor, name: str | None) -> tuple[str, str]:
    """(id, name) of the tenant named, or of the tenant acting."""
    if name is not None:
        return (await existing_tenant(conn, name)).id, name
    assert actor.tenant_id is not None, "an operator names the tenant"
    found = await accounts.tenant_name(conn, actor.tenant_id)
    if found is None:
        raise NotFound("No such tenant.", param="tenant")
    return actor.tenant_id, found


async def add_endpoint(
    db: Database,
    url: str,
    event_types: Sequence[str] | None,
    *,
    actor: Actor,
    allowlist: Sequence[str],
    tenant: str | None = None,
) -> AddedEndpoint:
    """Register a URL for the tenant's video events (every type when none is named)."""
    check_url_at_create(url, param="url", allowlist=allowlist)
    types = tuple(dict.fromkeys(event_types or EVENT_TYPES))
    unknown = [event for event in types if event not in EVENT_TYPES]
    if unknown or not types:
        raise InvalidRequest(
            f"event_types {unknown or list(types)!r} not supported; allowed values: "
            f"{', '.join(EVENT_TYPES)}.",
            param="event_types",
        )
    async with db.write() as conn:
        tenant_id, name = await _tenant(conn, actor, tenant)
        endpoint = await webhook_store.create_endpoint(conn, tenant_id, url, types)
        secret = await webhook_store.webhook_secret(conn, tenant_id)
        await audit.record(
            conn,
            actor,
            "webhook_endpoint.add",
            name,
            {"id": endpoint.id, "url": url_for_audit(url), "event_types": list(types)},
        )
        return AddedEndpoint(endpoint, secret)


async def remove_endpoint(
    db: Database, endpoint_id: str, *, actor: Actor, tenant: str | None = None
) -> None:
    async with db.write() as conn:
        tenant_id, name = await _tenant(conn, actor, tenant)
        await webhook_store.delete_endpoint(conn, tenant_id, endpoint_id)
        await audit.record(conn, actor, "webhook_endpoint.remove", name, {"id": endpoint_id})


async def rotate_secret(db: Database, *, actor: Actor, tenant: str | None = None) -> str:
    """A new signing secret at once; events from now on are signed with it."""
    async with db.write() as conn:
        tenant_id, name = await _tenant(conn, actor, tenant)
        secret = await webhook_store.rotate_secret(conn, tenant_id)
        await audit.record(conn, actor, "webhook_secret.rotate", name)
        return secret


async def replay_delivery(
    db: Database, delivery_id: str, *, actor: Actor, wakeups: Wakeups = NOBODY
) -> None:
    """Send a delivery again, from the start of its schedule, with the same webhook-id."""
    async with db.write() as conn:
        await webhook_store.replay_delivery(conn, delivery_id)
        await audit.record(conn, actor, "webhook_delivery.replay", delivery_id)
    wakeups.deliveries()
