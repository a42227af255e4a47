"""The portal's videos: the tenant's jobs, newest first; a job's page with live progress and
playback.

Content is served here, under `/portal`, through the API's own `asset_response` (ranges,
ETags, streaming) and checked against the session's tenant, rather than through the signed
`video_url` links: those would put a shareable link into the page, and with
`VIDRELAY_MEDIA_REDIRECT` they answer with a redirect to the object store, which the pages'
Content-Security-Policy (`media-src 'self'`) would refuse to play.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.responses import Response

from vidrelay.api.content import asset_response
from vidrelay.console.pages import PageRoute, context_of, not_found, render
from vidrelay.console.portal import Tenant
from vidrelay.console.sessions import Session
from vidrelay.domain.jobs import CONTENT_VARIANTS, JobRecord, JobStatus
from vidrelay.media.storage import ASSET_FILES, MEDIA_TYPES
from vidrelay.store import jobs as job_store

router = APIRouter(prefix="/portal", route_class=PageRoute, include_in_schema=False)

JOBS_PAGE = 20


async def owned_job(request: Request, session: Session, video_id: str) -> JobRecord:
    """The session's tenant's job; another tenant's is the same 404 as an unknown id."""
    async with context_of(request).db.read() as conn:
        job = await job_store.get_job(conn, video_id, session.tenant_id)
    if job is None:
        raise not_found("video")
    return job


@router.get("/jobs")
async def videos(
    request: Request,
    session: Tenant,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """`after` pages on: the id of the last video of the page before."""
    assert session.tenant_id is not None
    async with context_of(request).db.read() as conn:
        page = await job_store.list_jobs(
            conn, session.tenant_id, after=after, limit=JOBS_PAGE, order="desc"
        )
    if page is None:
        raise not_found("video to continue from")
    records, has_more = page
    return render(
        request,
        "portal/videos.html",
        {
            "jobs": records,
            "next_after": records[-1].id if has_more else None,
            "paged": after is not None,
        },
        session=session,
    )


@router.get("/jobs/{video_id}")
async def video(request: Request, session: Tenant, video_id: str) -> Response:
    job = await owned_job(request, session, video_id)
    return render(
        request,
        "portal/video.html",
        {
            "job": job,
            "playable": _playable(job),
            "poll_ms": max(500, context_of(request).settings.poll_after_ms),
        },
        session=session,
    )


@router.get("/jobs/{video_id}/progress")
async def progress(request: Request, session: Tenant, video_id: str) -> JSONResponse:
    """What the job page's script polls while the job runs (the same session, no key)."""
    job = await owned_job(request, session, video_id)
    return JSONResponse(
        {"status": job.status.value, "progress": job.progress, "finished": job.status.is_terminal}
    )


@router.get("/jobs/{video_id}/content")
async def content(
    request: Request, session: Tenant, video_id: str, variant: str = "video"
) -> Response:
    if variant not in CONTENT_VARIANTS:
        raise not_found("such file")
    job = await owned_job(request, session, video_id)
    media = context_of(request).media
    info = await media.asset_info(video_id, variant) if _playable(job) else None
    if info is None:
        raise not_found("content for this video")
    return await asset_response(
        request,
        media,
        video_id,
        variant,
        info,
        media_type=MEDIA_TYPES[variant],
        filename=f"{video_id}{Path(ASSET_FILES[variant]).suffix}",
    )


def _playable(job: JobRecord) -> bool:
    """Completed, and its media not yet expired."""
    return (
        job.status is JobStatus.COMPLETED
        and job.expires_at is not None
        and job.expires_at > time.time()
    )
