"""`/console/jobs`: every tenant's jobs under filters, and one job's page (its parameters, price,
timeline, webhook deliveries, and the video itself).

Both read through `services/jobs.py`, as `GET /admin/jobs` does, so the console refuses the
same bad filters. The video plays through the keyless signed links of `video_url`
(`/v1/videos/{id}/content?…&signature=…`, served by the same code as a tenant's download):
the operator has no tenant key, and the link names one job and one variant until the job's
media expires.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from vidrelay.console.listing import PAGE_SIZE, filters_of, moment, page_url
from vidrelay.console.operator import Operator
from vidrelay.console.pages import PageRoute, context_of, field_errors, not_found, render
from vidrelay.domain.errors import InvalidRequest, NotFound
from vidrelay.domain.jobs import JobStatus
from vidrelay.domain.video_object import content_url
from vidrelay.services import jobs as job_service

router = APIRouter(prefix="/console", route_class=PageRoute, include_in_schema=False)

FILTERS = ("tenant", "model", "channel", "status", "created_after", "created_before")
STATUSES = tuple(status.value for status in JobStatus)


@router.get("/jobs")
async def jobs_page(request: Request, session: Operator) -> Response:
    filters = filters_of(request, FILTERS)
    after = request.query_params.get("after") or None
    values: dict[str, Any] = {
        "filters": filters,
        "statuses": STATUSES,
        "jobs": [],
        "next_url": None,
        "first_url": page_url("/console/jobs", filters) if after else None,
    }
    try:
        query = job_service.JobQuery(
            tenant=filters["tenant"] or None,
            model=filters["model"] or None,
            channel=filters["channel"] or None,
            status=filters["status"] or None,
            created_after=moment(filters["created_after"], "created_after"),
            created_before=moment(filters["created_before"], "created_before"),
            after=after,
            limit=PAGE_SIZE,
        )
        page = await job_service.list_jobs(context_of(request).db, query)
    except (InvalidRequest, NotFound) as error:
        return render(
            request,
            "operator/jobs.html",
            {**values, "errors": field_errors(error)},
            session=session,
            status_code=400,
        )
    next_url = page_url("/console/jobs", filters, after=page.next_cursor or "")
    values.update(jobs=page.jobs, next_url=next_url if page.has_more else None, errors={})
    return render(request, "operator/jobs.html", values, session=session)


@router.get("/jobs/{job_id}")
async def job_page(request: Request, job_id: str, session: Operator) -> Response:
    try:
        detail = await job_service.job_detail(context_of(request).db, job_id)
    except NotFound:
        raise not_found("job") from None
    job = detail.job
    playable = (
        job.status is JobStatus.COMPLETED
        and job.expires_at is not None
        and job.expires_at > time.time()
    )
    signer = context_of(request).signer
    values = {
        "job": job,
        "tenant": detail.tenant,
        "events": detail.events,
        "deliveries": detail.deliveries,
        "video_src": content_url(job, "video", signer, "") if playable else None,
        "poster_src": content_url(job, "thumbnail", signer, "") if playable else None,
    }
    return render(request, "operator/job.html", values, session=session)
