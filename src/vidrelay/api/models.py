"""`/v1/models`: the models a caller can order now, in OpenAI's list shape, each with what a
client needs to build a request for it and what it costs that caller."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from vidrelay.api.auth import Authenticated, Context
from vidrelay.api.context import AppContext
from vidrelay.api.model_views import model_object
from vidrelay.domain.channels import served_routes
from vidrelay.domain.errors import NotFound
from vidrelay.store.accounts import Principal
from vidrelay.store.prices import price_rules_for

router = APIRouter(prefix="/v1")


@router.get("/models")
async def list_models(principal: Authenticated, context: Context) -> JSONResponse:
    """Every model of the catalog that a request can be accepted for now: served by an
    enabled channel (or by the built-in renderer while no channel is declared), and allowed
    to the caller's key."""
    return JSONResponse({"object": "list", "data": await _model_objects(context, principal)})


@router.get("/models/{model_id:path}")
async def retrieve_model(model_id: str, principal: Authenticated, context: Context) -> JSONResponse:
    found = await _model_objects(context, principal, only=model_id)
    if not found:
        raise NotFound(
            f"The model {model_id[:100]!r} does not exist or is not served here.",
            param="model",
            code="model_not_found",
        )
    return JSONResponse(found[0])


async def _model_objects(
    context: AppContext, principal: Principal, only: str | None = None
) -> list[dict[str, object]]:
    catalog = await context.models.catalog()
    declared = await context.channels.declared()
    allowed = principal.key_models
    models = [
        model
        for model in catalog
        if (only is None or model.name == only) and (allowed is None or model.name in allowed)
    ]
    async with context.db.read() as conn:
        rules = await price_rules_for(conn, only)
    objects = []
    for model in models:
        routes = served_routes(declared, model)
        if routes:
            objects.append(model_object(model, routes, rules, principal.multiplier_ppm))
    return objects
