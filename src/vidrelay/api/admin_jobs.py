"""`/admin/jobs/{id}`: one job as the operator sees it: the request exactly as it was accepted
(declared parameters and defaults included), its price, and where it ran."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from vidrelay.api.admin import AdminRoute
from vidrelay.api.auth import Context
from vidrelay.domain.errors import NotFound
from vidrelay.domain.jobs import JobRecord
from vidrelay.domain.pricing import micros_to_usd
from vidrelay.store import jobs as job_store

router = APIRouter(prefix="/admin/jobs", route_class=AdminRoute, tags=["admin"])


@router.get("/{job_id}")
async def get_job(job_id: str, context: Context) -> JSONResponse:
    async with context.db.read() as conn:
        job = await job_store.get_job(conn, job_id, include_deleted=True)
    if job is None:
        raise NotFound(f"No job with id {job_id[:100]!r}.", param="job_id")
    return JSONResponse(admin_job_view(job))


def admin_job_view(job: JobRecord) -> dict[str, Any]:
    request = job.request
    return {
        "object": "admin.job",
        "id": job.id,
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
