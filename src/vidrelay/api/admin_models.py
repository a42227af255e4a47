"""`/admin/models`: the catalog at runtime (DESIGN.md §3), declared with the same fields as the
`[[models]]` tables of `vidrelay.toml`, as JSON.

Same token and conventions as the rest of `/admin` (api/admin.py). A change made here is seen
by this process at once and by other replicas within `VIDRELAY_CHANNEL_REFRESH_S`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from vidrelay.api.admin import AdminActor, AdminRoute
from vidrelay.api.auth import Context
from vidrelay.api.context import AppContext
from vidrelay.domain.catalog import ModelSpec
from vidrelay.domain.channels import Channel, served_routes
from vidrelay.domain.declarations import model_declaration, parse_model
from vidrelay.domain.errors import InvalidRequest, NotFound
from vidrelay.services import catalog as catalog_service
from vidrelay.store import channels as channel_store
from vidrelay.store import models as model_store

router = APIRouter(prefix="/admin/models", route_class=AdminRoute, tags=["admin"])


@router.get("")
async def list_models(context: Context) -> JSONResponse:
    """The whole catalog (served or not), with where each model runs now."""
    async with context.db.read() as conn:
        catalog = await model_store.load_catalog(conn)
        declared = await channel_store.list_channels(conn)
    views = [_admin_view(model, declared) for model in catalog]
    return JSONResponse({"object": "list", "data": views})


@router.get("/{name:path}")
async def get_model(name: str, context: Context) -> JSONResponse:
    return JSONResponse(await _view(context, name))


@router.put("/{name:path}")
async def put_model(
    name: str, body: Annotated[dict[str, Any], Body()], context: Context, actor: AdminActor
) -> JSONResponse:
    """Declare a model or replace its declaration (201 when new). Jobs already accepted keep
    the request they were accepted with."""
    if body.get("name", name) != name:
        raise InvalidRequest(
            f"name {body.get('name')!r} in the body differs from {name!r} in the path.",
            param="name",
        )
    model = parse_model({**body, "name": name})
    [created] = await catalog_service.declare_models(
        context.db, [model], actor=actor, wakeups=context.wakeups
    )
    return JSONResponse(await _view(context, name), status_code=201 if created else 200)


@router.delete("/{name:path}")
async def delete_model(name: str, context: Context, actor: AdminActor) -> JSONResponse:
    """Refused (409) while a channel lists the model or a job for it is unfinished; its price
    rules go with it."""
    removed_rules = await catalog_service.remove_model(
        context.db, name, actor=actor, wakeups=context.wakeups
    )
    return JSONResponse(
        {
            "object": "model.deleted",
            "name": name,
            "deleted": True,
            "price_rules_deleted": removed_rules,
        }
    )


async def _view(context: AppContext, name: str) -> dict[str, Any]:
    async with context.db.read() as conn:
        model = (await model_store.load_catalog(conn)).get(name)
        declared = await channel_store.list_channels(conn)
    if model is None:
        raise NotFound(f"No model named {name[:100]!r} in the catalog.", param="name")
    return _admin_view(model, declared)


def _admin_view(model: ModelSpec, declared: list[Channel]) -> dict[str, Any]:
    return {
        "object": "model",
        **model_declaration(model),
        "created": model.created,
        "served_route_classes": [
            route.route_class.value for route in served_routes(declared, model)
        ],
        "channels": [channel.name for channel in declared if model.name in channel.models],
    }
