"""`/v1/webhooks`: a tenant's webhook endpoints and its signing secret."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from vidrelay.api.auth import Authenticated, Context
from vidrelay.domain.errors import InvalidRequest
from vidrelay.domain.webhooks import EventType
from vidrelay.outbound import check_url_at_create
from vidrelay.store import webhooks as webhook_store

router = APIRouter(prefix="/v1/webhooks")
_EVENT_TYPES = tuple(event.value for event in EventType)


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


@router.post("")
async def create_endpoint(
    body: EndpointCreate, principal: Authenticated, context: Context
) -> JSONResponse:
    """Register a URL for this tenant's video events; the answer carries the secret."""
    check_url_at_create(
        body.url, param="url", allowlist=context.settings.outbound_allowlist_entries
    )
    event_types = tuple(body.event_types or _EVENT_TYPES)
    unknown = [event for event in event_types if event not in _EVENT_TYPES]
    if unknown or not event_types:
        raise InvalidRequest(
            f"event_types {unknown or event_types!r} not supported; allowed values: "
            f"{', '.join(_EVENT_TYPES)}.",
            param="event_types",
        )
    async with context.db.write() as conn:
        endpoint = await webhook_store.create_endpoint(
            conn, principal.tenant_id, body.url, tuple(dict.fromkeys(event_types))
        )
        secret = await webhook_store.webhook_secret(conn, principal.tenant_id)
    return JSONResponse(_endpoint(endpoint, secret))


@router.get("")
async def list_endpoints(principal: Authenticated, context: Context) -> JSONResponse:
    async with context.db.read() as conn:
        endpoints = await webhook_store.list_endpoints(conn, principal.tenant_id)
    return JSONResponse({"object": "list", "data": [_endpoint(e) for e in endpoints]})


@router.delete("/{webhook_id}")
async def delete_endpoint(
    webhook_id: str, principal: Authenticated, context: Context
) -> JSONResponse:
    async with context.db.write() as conn:
        await webhook_store.delete_endpoint(conn, principal.tenant_id, webhook_id)
    return JSONResponse({"id": webhook_id, "object": "webhook_endpoint.deleted", "deleted": True})


@router.get("/secret")
async def show_secret(principal: Authenticated, context: Context) -> JSONResponse:
    async with context.db.write() as conn:
        secret = await webhook_store.webhook_secret(conn, principal.tenant_id)
    return JSONResponse({"object": "webhook_secret", "secret": secret})


@router.post("/secret/rotate")
async def rotate_secret(principal: Authenticated, context: Context) -> JSONResponse:
    """A new secret at once; events from now on are signed with it."""
    async with context.db.write() as conn:
        secret = await webhook_store.rotate_secret(conn, principal.tenant_id)
    return JSONResponse({"object": "webhook_secret", "secret": secret})
