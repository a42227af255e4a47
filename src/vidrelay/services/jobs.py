"""The operator's view of jobs: the list under filters and one job with its timeline and
webhook deliveries. The admin API and the console call these, so both read the same pages
through the same indexed queries and refuse the same bad filters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vidrelay.domain.errors import InvalidRequest, NotFound
from vidrelay.domain.events import JobEvent
from vidrelay.domain.jobs import JobRecord, JobStatus
from vidrelay.store import accounts
from vidrelay.store import jobs as job_store
from vidrelay.store import webhooks as webhook_store
from vidrelay.store.database import Database
from vidrelay.store.job_events import events_of

MAX_PAGE = 100
DEFAULT_PAGE = 20


@dataclass(frozen=True)
class JobQuery:
    """What the operator asked for; every field optional. `after` is the `next_cursor` of
    the previous page."""

    tenant: str | None = None
    """The tenant's name."""
    model: str | None = None
    channel: str | None = None
    status: str | None = None
    created_after: int | None = None
    """Inclusive, unix seconds."""
    created_before: int | None = None
    """Exclusive, unix seconds."""
    after: str | None = None
    limit: int = DEFAULT_PAGE


@dataclass(frozen=True)
class JobPage:
    jobs: list[job_store.ListedJob]
    has_more: bool
    next_cursor: str | None


async def list_jobs(db: Database, query: JobQuery) -> JobPage:
    """Every tenant's jobs, newest first, one page at a time; a bad filter is a 400 naming
    it, an unknown tenant a 404 (as in the ledger)."""
    status = _status(query.status)
    if not 1 <= query.limit <= MAX_PAGE:
        raise InvalidRequest(f"limit must be between 1 and {MAX_PAGE}.", param="limit")
    if (
        query.created_after is not None
        and query.created_before is not None
        and query.created_after >= query.created_before
    ):
        raise InvalidRequest(
            f"created_after ({query.created_after}) must be before created_before "
            f"({query.created_before}).",
            param="created_after",
        )
    async with db.read() as conn:
        tenant_id = None
        if query.tenant is not None:
            found = await accounts.find_tenant(conn, query.tenant)
            if found is None:
                raise NotFound(f"No tenant named {query.tenant[:200]!r}.", param="tenant")
            tenant_id = found.id
        where = job_store.JobFilter(
            tenant_id=tenant_id,
            model=query.model,
            channel=query.channel,
            status=status,
            created_after=query.created_after,
            created_before=query.created_before,
        )
        page = await job_store.search_jobs(conn, where, after=query.after, limit=query.limit)
    if page is None:
        after = (query.after or "")[:100]
        raise InvalidRequest(f"after: no job {after!r} to continue from.", param="after")
    listed, has_more = page
    return JobPage(listed, has_more, listed[-1].job.id if has_more else None)


def _status(value: str | None) -> JobStatus | None:
    if value is None:
        return None
    try:
        return JobStatus(value)
    except ValueError:
        allowed = ", ".join(status.value for status in JobStatus)
        raise InvalidRequest(
            f"status {value[:100]!r} is not a job status; allowed values: {allowed}.",
            param="status",
        ) from None


@dataclass(frozen=True)
class JobDetail:
    job: JobRecord
    tenant: str
    events: list[JobEvent]
    """In the order they happened."""
    deliveries: list[dict[str, Any]]
    """Its webhook deliveries, each with its `attempt_log`, newest first."""


async def job_detail(db: Database, job_id: str) -> JobDetail:
    """One job (deleted ones too) as the operator sees it; 404 when there is none. Read in one
    snapshot, so the timeline never runs ahead of the job's status."""
    async with db.snapshot() as conn:
        job = await job_store.get_job(conn, job_id, include_deleted=True)
        if job is None:
            raise NotFound(f"No job with id {job_id[:100]!r}.", param="job_id")
        return JobDetail(
            job,
            await job_store.tenant_name(conn, job.tenant_id),
            await events_of(conn, job_id),
            await webhook_store.list_deliveries(conn, job_id=job_id),
        )
