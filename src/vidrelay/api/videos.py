"""`/v1/videos`: create, list, retrieve, delete, content. Handlers parse, call, render."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.requests import Request

from vidrelay.api.auth import (
    Authenticated,
    Context,
    asked_status_style,
    require_principal,
    sent_by_official_sdk,
    status_style,
)
from vidrelay.api.content import asset_response
from vidrelay.api.context import AppContext, get_context
from vidrelay.api.create_request import read_create_form
from vidrelay.api.public_root import public_root
from vidrelay.domain.errors import Conflict, InvalidRequest, NotFound
from vidrelay.domain.jobs import CONTENT_VARIANTS, JobRecord, JobStatus
from vidrelay.domain.keys import hash_api_key
from vidrelay.domain.video_object import video_object
from vidrelay.media.storage import ASSET_FILES, MEDIA_TYPES
from vidrelay.services import videos as video_service
from vidrelay.services.videos import VideoOrder
from vidrelay.store import jobs as job_store
from vidrelay.store.accounts import Principal
from vidrelay.store.jobs import Accepted

router = APIRouter(prefix="/v1")
PRESIGNED_URL_S = 300
"""How long a redirect's presigned URL is valid: enough to start a download, short enough that
a shared link soon stops working."""

_CREATE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["prompt"],
                    "properties": {
                        "prompt": {"type": "string", "minLength": 1, "maxLength": 32000},
                        "model": {"type": "string", "description": "GET /v1/models"},
                        "seconds": {"type": "string"},
                        "size": {"type": "string", "pattern": "^[0-9]+x[0-9]+$"},
                        "input_reference": {"type": "string", "format": "binary"},
                        "character_url": {"type": "string"},
                        "character_timestamps": {"type": "string"},
                        "callback_url": {"type": "string"},
                    },
                    "additionalProperties": {
                        "description": "The model's declared parameters (GET /v1/models)"
                    },
                }
            },
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


def video_renderer(
    request: Request, context: AppContext, principal: Principal
) -> Callable[[JobRecord], dict[str, Any]]:
    """Renders jobs in the vocabulary and under the public root the request asks for; both are
    checked here, before the handler does any work (a create charges nothing on a bad one)."""
    style = status_style(request, principal)
    root = public_root(request, context.settings)
    return lambda job: video_object(job, style, context.signer, root)


@router.post("/videos", openapi_extra=_CREATE_BODY)
async def create_video(
    request: Request, principal: Authenticated, context: Context
) -> JSONResponse:
    render = video_renderer(request, context, principal)
    rate_headers = await context.rate_limiter.hit(principal)
    idempotency_key = idempotency_key_of(request)
    form = await read_create_form(request)
    order = VideoOrder(
        fields=form.fields,
        params=form.params,
        character_ids=form.character_ids,
        reference_image=form.reference_upload,
        reference_url=form.reference_url,
        reference_file_id=form.reference_file_id,
        idempotency_key=idempotency_key,
    )
    accepted = await video_service.accept_video(context.video_desk, principal, order)
    return JSONResponse(render(accepted_job(context, accepted, rate_headers)), headers=rate_headers)


def accepted_job(context: AppContext, accepted: Accepted, headers: dict[str, str]) -> JobRecord:
    """The job to answer with; an idempotent replay is flagged in `headers`, a new job counted."""
    if accepted.replayed:
        headers["idempotent-replayed"] = "true"
    elif context.metrics is not None:
        context.metrics.jobs_accepted.labels(accepted.job.model).inc()
    return accepted.job


def idempotency_key_of(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 1 <= len(key) <= 255:
        raise InvalidRequest(
            "The Idempotency-Key header must be 1 to 255 characters.",
            param="Idempotency-Key",
        )
    return key


@router.get("/videos")
async def list_videos(
    request: Request,
    principal: Authenticated,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    order: Literal["asc", "desc"] = "desc",
    after: str | None = None,
) -> JSONResponse:
    render = video_renderer(request, context, principal)
    async with context.db.read() as conn:
        page = await job_store.list_jobs(
            conn, principal.tenant_id, after=after, limit=limit, order=order
        )
    if page is None:
        raise InvalidRequest(f"after: no video {after!r} to continue from.", param="after")
    records, has_more = page
    data = [render(job) for job in records]
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": has_more,
        }
    )


async def _owned_job(context: AppContext, video_id: str, principal: Principal) -> JobRecord:
    async with context.db.read() as conn:
        job = await job_store.get_job(conn, video_id, principal.tenant_id)
    if job is None:
        raise NotFound(f"No video found with id {video_id!r}.", param="video_id")
    return job


async def retrieve_video(request: Request) -> Response:
    """The poll hot path, a plain Starlette endpoint (no dependency-injection overhead); a
    finished video's body may come from the status cache."""
    context = await get_context(request)
    video_id: str = request.path_params["video_id"]
    cache_key = _status_cache_key(request, context, video_id)
    cached = context.status_cache.get(cache_key) if cache_key else None
    if cached is not None:
        return Response(cached, media_type="application/json")
    principal = await require_principal(request, context)
    job = await _owned_job(context, video_id, principal)
    response = JSONResponse(video_renderer(request, context, principal)(job))
    if not job.status.is_terminal:
        response.headers["openai-poll-after-ms"] = str(context.settings.poll_after_ms)
    elif cache_key:
        context.status_cache.put(cache_key, bytes(response.body))
    return response


RETRIEVE_PATH = f"{router.prefix}/videos/{{video_id}}"
"""Mounted by `create_app` as the application's first route (see there)."""
RETRIEVE_OPERATION: dict[str, Any] = {
    "summary": "Retrieve Video",
    "description": "The video's current state; poll it until `completed` or `failed`.",
    "operationId": "retrieve_video",
    "parameters": [
        {"name": "video_id", "in": "path", "required": True, "schema": {"type": "string"}},
        {
            "name": "status_style",
            "in": "query",
            "required": False,
            "schema": {"type": "string", "enum": ["relay", "openai"]},
        },
    ],
    "responses": {
        "200": {"description": "The video object.", "content": {"application/json": {}}},
        "404": {"description": "No video of yours has this id."},
    },
}
"""The hot path is a plain route, absent from FastAPI's schema: described by hand."""


def _status_cache_key(
    request: Request, context: AppContext, video_id: str
) -> tuple[str, str, str, str] | None:
    """Everything the body depends on besides the job: key, vocabulary asked, public root.
    Only checked values go into it (a bad `status_style` or `Host` is a 400 here)."""
    asked = asked_status_style(request)
    root = public_root(request, context.settings)
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    style_hint = asked.value if asked else ("sdk" if sent_by_official_sdk(request) else "")
    return (hash_api_key(key.strip()), video_id, style_hint, root)


@router.delete("/videos/{video_id}")
async def delete_video(video_id: str, principal: Authenticated, context: Context) -> JSONResponse:
    job = await _owned_job(context, video_id, principal)
    async with context.db.write() as conn:
        deleted = await job_store.mark_deleted(conn, video_id, principal.tenant_id)
    if not deleted:
        raise Conflict(
            f"Video {video_id} is still {job.status.value}; it can be deleted once it has "
            "completed or failed.",
            param="video_id",
            code="video_not_finished",
        )
    await context.media.delete_job_media(video_id)
    context.status_cache.forget_video(video_id)
    return JSONResponse({"id": video_id, "object": "video.deleted", "deleted": True})


@router.get("/videos/{video_id}/content", response_model=None)
async def download_content(
    video_id: str,
    request: Request,
    context: Context,
    variant: str = "video",
    expires: int | None = None,
    signature: str | None = None,
) -> Response:
    """Streamed through from the media store, or with `VIDRELAY_MEDIA_REDIRECT` a redirect to
    a presigned URL valid `PRESIGNED_URL_S` (never past the video's `expires_at`)."""
    if variant not in CONTENT_VARIANTS:
        raise InvalidRequest(
            f"variant {variant!r} is not supported; allowed values: {', '.join(CONTENT_VARIANTS)}.",
            param="variant",
        )
    if signature is not None and expires is not None:
        if not context.signer.verify(video_id, variant, expires, signature):
            raise NotFound("This link is invalid or has expired.", code="invalid_signature")
        async with context.db.read() as conn:
            job = await job_store.get_job(conn, video_id)
        if job is None:
            raise NotFound(f"No video found with id {video_id!r}.", param="video_id")
    else:
        principal = await require_principal(request, context)
        job = await _owned_job(context, video_id, principal)
    if job.status is not JobStatus.COMPLETED:
        raise Conflict(
            f"Video {video_id} is not ready: its status is {job.status.value}. "
            "Content is available once the status is completed.",
            param="video_id",
            code="video_not_ready",
        )
    now = time.time()
    expired = NotFound(f"The content of video {video_id} has expired.", code="video_expired")
    if job.expires_at is not None and job.expires_at < now:
        raise expired
    info = await context.media.asset_info(video_id, variant)
    if info is None:
        raise expired
    if context.settings.media_redirect:
        lifetime = PRESIGNED_URL_S if job.expires_at is None else job.expires_at - int(now)
        url = await context.media.presigned_url(
            video_id, variant, max(1, min(PRESIGNED_URL_S, lifetime))
        )
        if url is not None:
            return RedirectResponse(url, status_code=307)
    return await asset_response(
        request,
        context.media,
        video_id,
        variant,
        info,
        media_type=MEDIA_TYPES[variant],
        filename=f"{video_id}{Path(ASSET_FILES[variant]).suffix}",
    )
