"""The rest of the Videos API: remixes, extensions and edits of a video (new jobs, billed and
refunded like any), and characters. Handlers parse, call, render."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.requests import Request

from vidrelay.api.auth import Authenticated, Context
from vidrelay.api.context import AppContext
from vidrelay.api.derived_request import read_character_form, read_derived_form
from vidrelay.api.videos import accepted_job, idempotency_key_of, video_renderer
from vidrelay.domain.catalog import (
    DEFAULT_MODEL,
    Capability,
    Catalog,
    ModelSpec,
    NormalisedRequest,
    Operation,
)
from vidrelay.domain.channels import require_operation
from vidrelay.domain.errors import InvalidRequest, NotFound
from vidrelay.engine.channels import operations_of
from vidrelay.media.source_videos import probe_mp4
from vidrelay.services import videos as video_service
from vidrelay.services.videos import DerivedOrder
from vidrelay.store import characters as character_store
from vidrelay.store.accounts import Principal

router = APIRouter(prefix="/v1")
CHARACTER_NAME_MAX = 80


def _body(*schemas: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "requestBody": {"required": True, "content": {kind: {"schema": s} for kind, s in schemas}}
    }


_PROMPT = {"type": "string", "minLength": 1, "maxLength": 32000}
_VIDEO_REF = {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}


def _source_body(*, with_seconds: bool) -> dict[str, Any]:
    extra = {"seconds": {"type": "string"}} if with_seconds else {}
    required = ["video", "prompt", *(["seconds"] if with_seconds else [])]
    return _body(
        (
            "multipart/form-data",
            {
                "type": "object",
                "required": required,
                "properties": {
                    "prompt": _PROMPT,
                    "video": {"type": "string", "format": "binary"},
                    "video[id]": {"type": "string"},
                    **extra,
                },
            },
        ),
        (
            "application/json",
            {
                "type": "object",
                "required": required,
                "properties": {"prompt": _PROMPT, "video": _VIDEO_REF, **extra},
            },
        ),
    )


@router.post(
    "/videos/{video_id}/remix",
    openapi_extra=_body(
        (
            "application/json",
            {"type": "object", "required": ["prompt"], "properties": {"prompt": _PROMPT}},
        ),
        (
            "multipart/form-data",
            {"type": "object", "required": ["prompt"], "properties": {"prompt": _PROMPT}},
        ),
    ),
)
async def remix_video(
    video_id: str, request: Request, principal: Authenticated, context: Context
) -> JSONResponse:
    """A new job from a completed video of yours: its model, seconds and size, a new prompt."""
    return await _derive(request, principal, context, Operation.REMIX, video_id)


@router.post("/videos/extensions", openapi_extra=_source_body(with_seconds=True))
async def extend_video(
    request: Request, principal: Authenticated, context: Context
) -> JSONResponse:
    """New seconds after a video (yours, or an uploaded MP4); the result is the whole length."""
    return await _derive(request, principal, context, Operation.EXTENSION)


@router.post("/videos/edits", openapi_extra=_source_body(with_seconds=False))
async def edit_video(request: Request, principal: Authenticated, context: Context) -> JSONResponse:
    """A video (yours, or an uploaded MP4) re-made as the prompt says."""
    return await _derive(request, principal, context, Operation.EDIT)


async def _derive(
    request: Request,
    principal: Principal,
    context: AppContext,
    operation: Operation,
    video_id: str | None = None,
) -> JSONResponse:
    """Every refusal (another tenant's source, an unfinished or expired one, a capability the
    model or every channel lacks, a bad upload) comes before the charge."""
    render = video_renderer(request, context, principal)
    rate_headers = await context.rate_limiter.hit(principal)
    idempotency_key = idempotency_key_of(request)
    form = await read_derived_form(request, takes_video=operation is not Operation.REMIX)
    order = DerivedOrder(
        operation=operation,
        fields=form.fields,
        source_id=video_id or form.video_id,
        source_param="video_id" if video_id else "video",
        source_upload=form.video_upload,
        idempotency_key=idempotency_key,
    )
    accepted = await video_service.derive_video(context.video_desk, principal, order)
    job = accepted_job(context, accepted, rate_headers)
    return JSONResponse(render(job), headers=rate_headers)


@router.post(
    "/videos/characters",
    openapi_extra=_body(
        (
            "multipart/form-data",
            {
                "type": "object",
                "required": ["video", "name"],
                "properties": {
                    "video": {"type": "string", "format": "binary"},
                    "name": {"type": "string", "minLength": 1, "maxLength": CHARACTER_NAME_MAX},
                },
            },
        )
    ),
)
async def create_character(
    request: Request, principal: Authenticated, context: Context
) -> JSONResponse:
    """A named character from a short clip (yours alone); a create then names it in
    `characters`. Free unless a price rule says `operation = "character"`."""
    rate_headers = await context.rate_limiter.hit(principal)
    idempotency_key = idempotency_key_of(request)
    raw_name, clip = await read_character_form(request)
    name = _character_name(raw_name)
    info = probe_mp4(clip, "video")
    model = _character_model(await context.models.catalog())
    probe = NormalisedRequest(
        model=model.name,
        route_class=model.routes[0].route_class,
        seconds=model.routes[0].default_seconds,
        size=model.default_size,
        prompt=name,
        operation=Operation.CHARACTER,
    )
    require_operation(await context.channels.declared(), probe, operations_of)
    character_id = character_store.new_character_id()
    await context.media.save_character_clip(character_id, clip)
    new = character_store.NewCharacter(
        id=character_id,
        tenant_id=principal.tenant_id,
        key_id=principal.key_id,
        name=name,
        seconds=info.seconds,
        model=model,
        multiplier_ppm=principal.multiplier_ppm,
        charge=context.settings.billing,
        idempotency_key=idempotency_key,
        request_hash=hashlib.sha256(name.encode() + b"\x00" + clip).hexdigest(),
    )
    try:
        character, replayed = await character_store.create_character(context.db, new)
    except BaseException:
        await context.media.delete_character_clip(character_id)
        raise
    if replayed:
        await context.media.delete_character_clip(character_id)
        rate_headers["idempotent-replayed"] = "true"
    return JSONResponse(character.wire(), headers=rate_headers)


@router.get("/videos/characters/{character_id}")
async def get_character(
    character_id: str, principal: Authenticated, context: Context
) -> JSONResponse:
    async with context.db.read() as conn:
        character = await character_store.get_character(conn, character_id, principal.tenant_id)
    if character is None:
        raise NotFound(f"No character found with id {character_id[:80]!r}.", param="character_id")
    return JSONResponse(character.wire())


def _character_name(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > CHARACTER_NAME_MAX:
        length = len(raw) if isinstance(raw, str) else 0
        raise InvalidRequest(
            f"name must be 1 to {CHARACTER_NAME_MAX} characters (got {length}).",
            param="name",
            code="missing_required_parameter" if raw is None else "invalid_value",
        )
    return raw


def _character_model(catalog: Catalog) -> ModelSpec:
    """Whose price rules price a character: the default model, else the first that can
    take characters."""
    default = catalog.get(DEFAULT_MODEL)
    if default is not None and default.can(Capability.CHARACTER):
        return default
    for model in catalog:
        if model.can(Capability.CHARACTER):
            return model
    raise InvalidRequest(
        "No model of this gateway has the character capability.",
        param="video",
        code="unsupported_capability",
    )
