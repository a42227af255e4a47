"""`/v1/webhooks`: a tenant's webhook endpoints and its signing secret, through the same use
cases as `vidrelay webhooks` (services/webhooks.py), recorded in the audit log as the tenant's."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from vidrelay.api.auth import Authenticated, Context
from vidrelay.domain.audit import Actor, ActorKind
from vidrelay.services import webhooks as webhook_service
from vidrelay.store import webhooks as webhook_store
from vidrelay.store.accounts import Principal

router = APIRouter(prefix="/v1/webhooks")


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048)
    event_types: list[str] | None = None


def _endpoint(endpoint: webhook_store.Endpoint, secret: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": endpoint.id,
        "object": "webhook_endpoint",
        "url": endpoint.url,
        "event_types": list(endpoint.event_types),
        "created_at": endpoint.created_at,
    }
    if secret is not None:
        body["secret"] = secret
    return body


def tenant_actor(request: Request, principal: Principal) -> Actor:
    """A tenant serving itself, by the address its request came from."""
    address = request.client.host if request.client else None
    return Actor(ActorKind.TENANT, address=address, tenant_id=principal.tenant_id)


@router.post("")
async def create_endpoint(
    body: EndpointCreate, request: Request, principal: Authenticated, context: Context
) -> JSONResponse:
    """Register a URL for this tenant's video events; the answer carries the secret."""
    added = await webhook_service.add_endpoint(
        context.db,
        body.url,
        body.event_types,
        actor=tenant_actor(request, principal),
        allowlist=context.settings.outbound_allowlist_entries,
    )
    return JSONResponse(_endpoint(added.endpoint, added.secret))


@router.get("")
async def list_endpoints(principal: Authenticated, context: Context) -> JSONResponse:
    async with context.db.read() as conn:
        endpoints = await webhook_store.list_endpoints(conn, principal.tenant_id)
    return JSONResponse({"object": "list", "data": [_endpoint(e) for e in endpoints]})


@router.delete("/{webhook_id}")
async def delete_endpoint(
    webhook_id: str, request: Request, principal: Authenticated, context: Context
) -> JSONResponse:
    actor = tenant_actor(request, principal)
    await webhook_service.remove_endpoint(context.db, webhook_id, actor=actor)
    return JSONResponse({"id": webhook_id, "object": "webhook_endpoint.deleted", "deleted": True})


@router.get("/secret")
async def show_secret(principal: Authenticated, context: Context) -> JSONResponse:
    async with context.db.write() as conn:
        secret = await webhook_store.webhook_secret(conn, principal.tenant_id)
    return JSONResponse({"object": "webhook_secret", "secret": secret})


@router.post("/secret/rotate")
async def rotate_secret(
    request: Request, principal: Authenticated, context: Context
) -> JSONResponse:
    """A new secret at once; events from now on are signed with it."""
    actor = tenant_actor(request, principal)
    secret = await webhook_service.rotate_secret(context.db, actor=actor)
    return JSONResponse({"object": "webhook_secret", "secret": secret})
