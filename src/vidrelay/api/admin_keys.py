"""`/admin/tenants/{name}/keys` and `/admin/keys/{id}`: a tenant's API keys over HTTP.

Same token and conventions as the rest of `/admin` (api/admin.py); the rules are those of
`vidrelay keys` (services/keys.py), except that an unknown tenant is a 404 here, never created.
A key's secret is in the answer to its creation only; listings show a hint.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from vidrelay.api.admin import AdminActor, AdminRoute
from vidrelay.api.auth import Context
from vidrelay.domain.keys import LATEST_EXPIRY, MAX_KEY_NAME, KeySpec
from vidrelay.services import keys as key_service
from vidrelay.store.accounts import KeyInfo

router = APIRouter(prefix="/admin", route_class=AdminRoute, tags=["admin"])


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=MAX_KEY_NAME)
    expires_at: int | None = Field(default=None, ge=1, le=LATEST_EXPIRY)
    """Unix seconds."""
    models: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = None


def key_view(key: KeyInfo) -> dict[str, Any]:
    return {
        "id": key.id,
        "object": "api_key",
        "tenant": key.tenant_name,
        "name": key.name,
        "hint": key.hint,
        "created_at": key.created_at,
        "expires_at": key.expires_at,
        "models": list(key.models) if key.models is not None else None,
        "revoked": key.revoked_at is not None,
        "revoked_at": key.revoked_at,
    }


@router.get("/tenants/{name}/keys")
async def list_tenant_keys(name: str, context: Context) -> JSONResponse:
    keys = await key_service.list_keys(context.db, name)
    return JSONResponse({"object": "list", "data": [key_view(key) for key in keys]})


@router.post("/tenants/{name}/keys")
async def create_tenant_key(
    name: str, body: KeyCreate, context: Context, actor: AdminActor
) -> JSONResponse:
    """The answer carries the key in `key`, once: it is stored as a hash."""
    spec = KeySpec(
        name=body.name,
        expires_at=body.expires_at,
        models=tuple(body.models) if body.models is not None else None,
    )
    issued = await key_service.create_key(context.db, name, spec, actor=actor)
    return JSONResponse({**key_view(issued.info), "key": issued.key}, status_code=201)


@router.delete("/keys/{key_id}")
async def revoke_key(key_id: str, context: Context, actor: AdminActor) -> JSONResponse:
    """Revoke a key: its requests are refused (401) from now on. Again: the same answer."""
    return JSONResponse(key_view(await key_service.revoke_key(context.db, key_id, actor=actor)))
