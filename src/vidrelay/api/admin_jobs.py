"""`/admin/jobs`: every tenant's jobs under the operator's filters, and one job as the operator
sees it: the request exactly as it was accepted (declared parameters and defaults included),
its price, where it ran, its timeline and its webhook deliveries. The use cases live in
`services/jobs.py` (the console calls them too); this module parses and renders."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from vidrelay.api.admin import AdminRoute
from vidrelay.api.auth import Context
from vidrelay.api.usage import Timestamp
from vidrelay.domain.events import JobEvent
from vidrelay.domain.jobs import JobRecord
from vidrelay.domain.pricing import micros_to_usd
from vidrelay.services import jobs as job_service

router = APIRouter(prefix="/admin/jobs", route_class=AdminRoute, tags=["admin"])


@router.get("")
async def list_jobs(
    context: Context,
    tenant: str | None = None,
    model: str | None = None,
    channel: str | None = None,
    status: str | None = None,
    created_after: Timestamp = None,
    created_before: Timestamp = None,
    after: str | None = None,
    limit: Annotated[int, Query(ge=1, le=job_service.MAX_PAGE)] = job_service.DEFAULT_PAGE,
) -> JSONResponse:
    """Newest first; the next page is `after=<next_cursor>` with the same filters."""
    query = job_service.JobQuery(
        tenant=tenant,
        model=model,
        channel=channel,
        status=status,
        created_after=created_after,
        created_before=created_before,
        after=after,
        limit=limit,
    )
    page = await job_service.list_jobs(context.db, query)
    return JSONResponse(
        {
            "object": "list",
            "data": [admin_job_view(listed.job, listed.tenant) for listed in page.jobs],
            "has_more": page.has_more,
            "next_cursor": page.next_cursor,
        }
    )


@router.get("/{job_id}")
async def get_job(job_id: str, context: Context) -> JSONResponse:
    detail = await job_service.job_detail(context.db, job_id)
    return JSONResponse(
        {
            **admin_job_view(detail.job, detail.tenant),
            "events": [event_view(event) for event in detail.events],
            "deliveries": detail.deliveries,
        }
    )


def event_view(event: JobEvent) -> dict[str, Any]:
    return {"id": event.id, "kind": event.kind.value, "at": event.at, "details": event.details}


def admin_job_view(job: JobRecord, tenant: str) -> dict[str, Any]:
    request = job.request
    return {
        "object": "admin.job",
        "id": job.id,
        "tenant": tenant,
        "tenant_id": job.tenant_id,
        "key_id": job.key_id,
        "status": job.status.value,
        "progress": job.progress,
        "request": {
            "operation": request.operation.value,
            **request.standard_fields(),
            "params": dict(request.params),
            "has_reference": job.has_reference,
            "callback_url": job.callback_url,
        },
        "price_usd": str(micros_to_usd(job.price_micros)),
        "channel": job.channel,
        "attempts": job.attempts,
        # submissions a crash may have left running upstream (see SubmissionIntent)
        "possibly_orphaned_submissions": job.orphaned_submissions,
        "error": (
            {"code": job.error_code, "message": job.error_message} if job.error_code else None
        ),
        "created_at": job.created_at,
        "submitted_at": job.submitted_at,
        "completed_at": job.completed_at,
        "expires_at": job.expires_at,
    }
