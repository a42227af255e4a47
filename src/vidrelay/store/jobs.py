"""Job persistence. Every state change is a compare-and-set on the job's status, so whichever
worker or replica gets there first wins, and a charge is refunded at most once."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from vidrelay.domain import events
from vidrelay.domain.catalog import (
    CharacterTimestamps,
    NormalisedRequest,
    Operation,
    RouteClass,
    SourceVideo,
)
from vidrelay.domain.errors import Conflict, InsufficientQuota, RateLimited
from vidrelay.domain.events import EventKind, JobEvent
from vidrelay.domain.jobs import UNFINISHED, JobRecord, JobStatus, SubmissionIntent
from vidrelay.domain.limits import Limits
from vidrelay.domain.pricing import PPM, quote, usd_text
from vidrelay.domain.webhooks import EventType
from vidrelay.store.accounts import count_key_spend, debit, insert_ledger_entry, tenant_balance
from vidrelay.store.database import Database
from vidrelay.store.job_events import record_events
from vidrelay.store.prices import price_rules_for
from vidrelay.store.tables import api_keys, idempotency_keys, jobs, tenants
from vidrelay.store.webhooks import enqueue_video_event

_JOB_COLUMNS = [
    jobs.c.id,
    jobs.c.tenant_id,
    jobs.c.key_id,
    jobs.c.model,
    jobs.c.route_class,
    jobs.c.seconds,
    jobs.c.size,
    jobs.c.prompt,
    jobs.c.character_url,
    jobs.c.character_timestamps,
    jobs.c.callback_url,
    jobs.c.has_reference,
    jobs.c.price_micros,
    jobs.c.status,
    jobs.c.progress,
    jobs.c.error_code,
    jobs.c.error_message,
    jobs.c.created_at,
    jobs.c.completed_at,
    jobs.c.expires_at,
    jobs.c.channel,
    jobs.c.upstream_job_id,
    jobs.c.attempts,
    jobs.c.remixed_from_video_id,
    jobs.c.upstream_key_ref,
    jobs.c.submitted_at,
    jobs.c.params,
    jobs.c.operation,
    jobs.c.intent_channel,
    jobs.c.intent_key_ref,
    jobs.c.intent_token,
    jobs.c.orphaned_submissions,
    jobs.c.source_video_id,
    jobs.c.source_seconds,
    jobs.c.source_prompt,
    jobs.c.source_channel,
    jobs.c.source_upstream_job_id,
    jobs.c.source_key_ref,
    jobs.c.source_upstream_video_ref,
    jobs.c.character_ids,
    jobs.c.upstream_video_ref,
]
_UNFINISHED_VALUES = [status.value for status in UNFINISHED]


_REQUEST_COLUMNS = (
    "model",
    "route_class",
    "seconds",
    "size",
    "prompt",
    "character_url",
    "character_timestamps",
    "params",
    "operation",
    "source_video_id",
    "source_seconds",
    "source_prompt",
    "source_channel",
    "source_upstream_job_id",
    "source_key_ref",
    "source_upstream_video_ref",
    "character_ids",
)


def _record(row: Row[Any]) -> JobRecord:
    values = row._asdict()
    request = _request(*(values.pop(column) for column in _REQUEST_COLUMNS))
    values["status"] = JobStatus(values["status"])
    values["has_reference"] = bool(values["has_reference"])
    channel, ref, token = (values.pop(f"intent_{part}") for part in ("channel", "key_ref", "token"))
    values["intent"] = SubmissionIntent(channel, ref, token) if channel and token else None
    return JobRecord(request=request, **values)


def _request(
    model: str,
    route_class: str,
    seconds: str,
    size: str,
    prompt: str,
    character_url: str | None,
    character_timestamps: str | None,
    params: str | None,
    operation: str | None,
    source_video_id: str | None,
    source_seconds: int | None,
    source_prompt: str | None,
    source_channel: str | None,
    source_upstream_job_id: str | None,
    source_key_ref: str | None,
    source_upstream_video_ref: str | None,
    character_ids: str | None,
) -> NormalisedRequest:
    """The accepted request as `_request_values` stored it."""
    source = (
        None
        if source_seconds is None
        else SourceVideo(
            seconds=source_seconds,
            video_id=source_video_id,
            prompt=source_prompt,
            channel=source_channel,
            upstream_job_id=source_upstream_job_id,
            key_ref=source_key_ref,
            upstream_video_ref=source_upstream_video_ref,
        )
    )
    return NormalisedRequest(
        model=model,
        route_class=RouteClass(route_class),
        seconds=seconds,
        size=size,
        prompt=prompt,
        character_url=character_url,
        character_timestamps=(
            CharacterTimestamps.from_text(character_timestamps) if character_timestamps else None
        ),
        params=json.loads(params) if params else {},
        operation=Operation(operation) if operation else Operation.CREATE,
        source=source,
        character_ids=tuple(json.loads(character_ids)) if character_ids else (),
    )


def _request_values(request: NormalisedRequest) -> dict[str, Any]:
    return {
        **request.standard_fields(),
        "params": json.dumps(dict(request.params)) if request.params else None,
        "operation": None if request.operation is Operation.CREATE else request.operation.value,
        "character_ids": json.dumps(list(request.character_ids)) if request.character_ids else None,
        **_source_values(request.source),
    }


def _source_values(source: SourceVideo | None) -> dict[str, Any]:
    return {
        "source_video_id": source.video_id if source else None,
        "source_seconds": source.seconds if source else None,
        "source_prompt": source.prompt if source else None,
        "source_channel": source.channel if source else None,
        "source_upstream_job_id": source.upstream_job_id if source else None,
        "source_key_ref": source.key_ref if source else None,
        "source_upstream_video_ref": source.upstream_video_ref if source else None,
    }


IDEMPOTENCY_WINDOW_S = 24 * 3600


@dataclass(frozen=True)
class NewJob:
    id: str
    tenant_id: str
    key_id: str
    request: NormalisedRequest
    callback_url: str | None
    has_reference: bool
    multiplier_ppm: int = PPM
    key_limits: Limits = field(default_factory=Limits)
    tenant_limits: Limits = field(default_factory=Limits)
    key_has_spend_limit: bool = False
    idempotency_key: str | None = None
    request_hash: str | None = None
    charge: bool = True


@dataclass(frozen=True)
class Accepted:
    job: JobRecord
    replayed: bool  # an earlier accept with the same idempotency key and request


async def accept_job(db: Database, job: NewJob) -> Accepted:
    """Check, charge and insert the job in ONE transaction.

    Concurrency: the conditional UPDATE of the tenant's balance both spends the money and locks
    the tenant's row, so racing accepts of one tenant are serialised from there on (PostgreSQL);
    SQLite writers are serialised by `BEGIN IMMEDIATE`. In-flight counts and the key's spending
    limit (tracked only for keys that have one) are therefore exact. Two requests racing on
    one new idempotency key collide on its primary key; the loser retries once and finds the
    winner's job.
    """
    for attempt in (1, 2):
        try:
            async with db.write() as conn:
                return await _accept(conn, job)
        except IntegrityError:
            if attempt == 2 or job.idempotency_key is None:
                raise
    raise AssertionError("unreachable")


async def _accept(conn: AsyncConnection, job: NewJob) -> Accepted:
    """The rows are written first and the tenant's row is locked last (by the balance UPDATE):
    what runs while other accepts of this tenant wait is then one statement, the in-flight
    counts when limits are set, the key's spend when it has a limit, and the commit. A refusal
    raises, and the rollback takes the rows back."""
    now = time.time()
    if job.idempotency_key is not None:
        replayed = await _claim_idempotency_key(conn, job, now)
        if replayed is not None:
            return Accepted(replayed, replayed=True)
    request = job.request
    price = 0
    if job.charge:
        price = quote(await price_rules_for(conn, request.model), request, job.multiplier_ppm)
    values = {
        "id": job.id,
        "tenant_id": job.tenant_id,
        "key_id": job.key_id,
        **_request_values(request),
        "callback_url": job.callback_url,
        "has_reference": int(job.has_reference),
        "price_micros": price,
        "status": JobStatus.QUEUED.value,
        "progress": 0,
        "created_at": int(now),
        "attempts": 0,
        "remixed_from_video_id": (
            request.source.video_id
            if request.source is not None and request.operation is Operation.REMIX
            else None
        ),
    }
    row = (
        await conn.execute(insert(jobs).values(created_ts=now, **values).returning(*_JOB_COLUMNS))
    ).one()
    if price:
        await insert_ledger_entry(
            conn,
            job.tenant_id,
            "charge",
            -price,
            note=" ".join(
                filter(
                    None,
                    (
                        None if request.operation is Operation.CREATE else request.operation.value,
                        request.model,
                        f"{request.seconds}s",
                        request.size,
                        request.params_text(),
                    ),
                )
            ),
            actor=job.key_id,
            job_id=job.id,
        )
    if not await debit(conn, job.tenant_id, price):
        balance = await tenant_balance(conn, job.tenant_id)
        raise InsufficientQuota(
            f"Your balance is ${usd_text(balance)}; this video costs ${usd_text(price)} "
            f"({request.seconds} s of {request.model}). Top up and try again."
        )
    await _check_in_flight(conn, jobs.c.key_id == job.key_id, job.key_limits, "this key")
    await _check_in_flight(conn, jobs.c.tenant_id == job.tenant_id, job.tenant_limits, "you")
    if price and job.key_has_spend_limit and not await count_key_spend(conn, job.key_id, price):
        raise InsufficientQuota(
            f"This key has reached its spending limit (this video costs ${usd_text(price)})."
        )
    await record_events(conn, [events.accepted(job.id, price, now)])
    return Accepted(_record(row), replayed=False)


async def _claim_idempotency_key(
    conn: AsyncConnection, job: NewJob, now: float
) -> JobRecord | None:
    """The job an earlier identical request created, or None after reserving the key."""
    assert job.idempotency_key is not None
    earlier_id = await claim_idempotency_key(
        conn, job.tenant_id, job.idempotency_key, job.request_hash or "", job.id, now
    )
    if earlier_id is None:
        return None
    first = await get_job(conn, earlier_id, include_deleted=True)
    assert first is not None
    return first


async def claim_idempotency_key(
    conn: AsyncConnection,
    tenant_id: str,
    idempotency_key: str,
    request_hash: str,
    new_id: str,
    now: float,
) -> str | None:
    """The id (a job's, a character's) an earlier identical request made within the window,
    or None after reserving the key for `new_id`; a 409 when the key came with another
    request."""
    key_match = (
        idempotency_keys.c.tenant_id == tenant_id,
        idempotency_keys.c.idempotency_key == idempotency_key,
    )
    earlier = (await conn.execute(select(idempotency_keys).where(*key_match))).first()
    if earlier is not None and earlier.created_at >= now - IDEMPOTENCY_WINDOW_S:
        if earlier.request_hash != request_hash:
            raise Conflict(
                "This Idempotency-Key was already used with a different request; use a new "
                "key for a new request.",
                code="idempotency_key_reused",
            )
        return str(earlier.job_id)
    if earlier is not None:
        await conn.execute(delete(idempotency_keys).where(*key_match))
    await conn.execute(
        insert(idempotency_keys).values(
            tenant_id=tenant_id,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            job_id=new_id,
            created_at=int(now),
        )
    )
    return None


async def _check_in_flight(
    conn: AsyncConnection, owner: ColumnElement[bool], limits: Limits, whom: str
) -> None:
    if limits.max_in_flight is None:
        return
    in_flight = await conn.scalar(
        select(func.count()).select_from(jobs).where(owner, jobs.c.status.in_(_UNFINISHED_VALUES))
    )
    if int(in_flight or 0) > limits.max_in_flight:  # the count includes this new job
        raise RateLimited(
            f"Too many videos in flight: {whom} may have {limits.max_in_flight} queued or in "
            "progress at once. Retry when one finishes.",
            retry_after_s=5,
        )


async def get_job(
    conn: AsyncConnection,
    job_id: str,
    tenant_id: str | None = None,
    *,
    include_deleted: bool = False,
) -> JobRecord | None:
    """A live (not deleted) job; with `tenant_id`, only that tenant's."""
    query = select(*_JOB_COLUMNS).where(jobs.c.id == job_id)
    if not include_deleted:
        query = query.where(jobs.c.deleted_at.is_(None))
    if tenant_id is not None:
        query = query.where(jobs.c.tenant_id == tenant_id)
    row = (await conn.execute(query)).first()
    return _record(row) if row else None


async def list_jobs(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    after: str | None,
    limit: int,
    order: Literal["asc", "desc"],
) -> tuple[list[JobRecord], bool] | None:
    """One page of a tenant's jobs; None when `after` names no job of theirs."""
    query = select(*_JOB_COLUMNS).where(jobs.c.tenant_id == tenant_id, jobs.c.deleted_at.is_(None))
    if after is not None:
        cursor = (
            await conn.execute(
                select(jobs.c.created_ts, jobs.c.id).where(
                    jobs.c.id == after, jobs.c.tenant_id == tenant_id
                )
            )
        ).first()
        if cursor is None:
            return None
        query = query.where(_past_cursor(cursor.created_ts, cursor.id, order))
    rows = (await conn.execute(query.order_by(*_creation_order(order)).limit(limit + 1))).all()
    return [_record(row) for row in rows[:limit]], len(rows) > limit


def _past_cursor(created_ts: float, job_id: str, order: Literal["asc", "desc"]) -> Any:
    """The jobs after (`created_ts`, `job_id`) in creation order. The first term bounds the
    range of an index on (…, created_ts, id), so a deep page seeks to its place instead of
    walking every row before it."""
    if order == "desc":
        return and_(
            jobs.c.created_ts <= created_ts,
            or_(jobs.c.created_ts < created_ts, jobs.c.id < job_id),
        )
    return and_(
        jobs.c.created_ts >= created_ts,
        or_(jobs.c.created_ts > created_ts, jobs.c.id > job_id),
    )


def _creation_order(order: Literal["asc", "desc"]) -> tuple[Any, ...]:
    if order == "desc":
        return jobs.c.created_ts.desc(), jobs.c.id.desc()
    return jobs.c.created_ts.asc(), jobs.c.id.asc()


@dataclass(frozen=True)
class JobFilter:
    """The operator's filters (`GET /admin/jobs`); each is served by an index on
    (column, created_ts, id), the creation range by (created_ts, id)."""

    tenant_id: str | None = None
    model: str | None = None
    channel: str | None = None
    status: JobStatus | None = None
    created_after: float | None = None
    """Inclusive, unix seconds."""
    created_before: float | None = None
    """Exclusive, unix seconds."""


@dataclass(frozen=True)
class ListedJob:
    job: JobRecord
    tenant: str
    """The tenant's name."""


class _unindexed(FunctionElement[str]):
    """A column that SQLite must not choose an index for: without statistics (vidrelay runs
    no ANALYZE) it would as soon walk every completed job for `status` as the tenant's few
    for `tenant_id`. PostgreSQL has statistics and plans for itself."""

    type = String()
    name = "unindexed"
    inherit_cache = True


@compiles(_unindexed)
def _column_itself(element: _unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


@compiles(_unindexed, "sqlite")
def _sqlite_unindexed(element: _unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return "+" + str(compiler.process(element.clauses, **kw))  # SQLite's documented way


def search_query(where: JobFilter, cursor: tuple[float, str] | None) -> Select[Any]:
    """The jobs `where` selects past `cursor` (created_ts, id), newest first."""
    query = select(*_JOB_COLUMNS)
    equal = [
        (column, value)
        for column, value in (  # the most selective first: its index leads
            (jobs.c.tenant_id, where.tenant_id),
            (jobs.c.channel, where.channel),
            (jobs.c.model, where.model),
            (jobs.c.status, where.status.value if where.status else None),
        )
        if value is not None
    ]
    for position, (column, value) in enumerate(equal):
        query = query.where((column if position == 0 else _unindexed(column)) == value)
    if where.created_after is not None:
        query = query.where(jobs.c.created_ts >= where.created_after)
    if where.created_before is not None:
        query = query.where(jobs.c.created_ts < where.created_before)
    if cursor is not None:
        query = query.where(_past_cursor(*cursor, "desc"))
    return query.order_by(*_creation_order("desc"))


async def search_jobs(
    conn: AsyncConnection, where: JobFilter, *, after: str | None, limit: int
) -> tuple[list[ListedJob], bool] | None:
    """One page of every tenant's jobs (deleted ones too), newest first; None when `after`
    names no job."""
    cursor = None
    if after is not None:
        cursor = (
            await conn.execute(select(jobs.c.created_ts, jobs.c.id).where(jobs.c.id == after))
        ).first()
        if cursor is None:
            return None
    query = search_query(where, None if cursor is None else (cursor.created_ts, cursor.id))
    rows = (await conn.execute(query.limit(limit + 1))).all()
    found = [_record(row) for row in rows[:limit]]
    names = await _tenant_names(conn, {job.tenant_id for job in found})
    return [ListedJob(job, names.get(job.tenant_id, "")) for job in found], len(rows) > limit


async def _tenant_names(conn: AsyncConnection, tenant_ids: set[str]) -> dict[str, str]:
    if not tenant_ids:
        return {}
    rows = await conn.execute(
        select(tenants.c.id, tenants.c.name).where(tenants.c.id.in_(tenant_ids))
    )
    return {row.id: row.name for row in rows}


async def tenant_name(conn: AsyncConnection, tenant_id: str) -> str:
    return (await _tenant_names(conn, {tenant_id})).get(tenant_id, "")


async def mark_deleted(conn: AsyncConnection, job_id: str, tenant_id: str) -> bool:
    """Soft-delete a finished job (its ledger rows keep pointing at it)."""
    result = await conn.execute(
        update(jobs)
        .where(
            jobs.c.id == job_id,
            jobs.c.tenant_id == tenant_id,
            jobs.c.deleted_at.is_(None),
            jobs.c.status.in_([JobStatus.COMPLETED.value, JobStatus.FAILED.value]),
        )
        .values(deleted_at=int(time.time()))
    )
    if result.rowcount != 1:
        return False
    await record_events(conn, [JobEvent(job_id, EventKind.DELETED)])
    return True


def _due(now: float) -> ColumnElement[bool]:
    return and_(
        jobs.c.status == JobStatus.QUEUED.value,
        or_(jobs.c.not_before.is_(None), jobs.c.not_before <= now),
    )


@dataclass(frozen=True)
class QueuedJob:
    """What the dispatcher needs to route a queued job before it claims it."""

    id: str
    request: NormalisedRequest
    created_at: int
    channel: str | None
    upstream_job_id: str | None

    @property
    def model(self) -> str:
        return self.request.model


async def due_queued(conn: AsyncConnection, now: float, limit: int) -> list[QueuedJob]:
    """Queued jobs that are due, oldest first."""
    rows = await conn.execute(
        select(
            jobs.c.id,
            jobs.c.created_at,
            jobs.c.channel,
            jobs.c.upstream_job_id,
            *(jobs.c[column] for column in _REQUEST_COLUMNS),
        )
        .where(_due(now))
        .order_by(jobs.c.created_ts)
        .limit(limit)
    )
    return [
        QueuedJob(
            row.id,
            _request(*(getattr(row, column) for column in _REQUEST_COLUMNS)),
            row.created_at,
            row.channel,
            row.upstream_job_id,
        )
        for row in rows
    ]


async def claim_job(
    conn: AsyncConnection, job_id: str, worker: str, lease_until: float, channel: str | None
) -> JobRecord | None:
    """Compare-and-set a queued job to running under `worker`'s lease.

    `channel` reserves the job's place on the channel it will be submitted to, so every
    replica counts it against that channel's concurrency limit: the caller checks the limit in
    the same transaction, under `lock_channel_slots`.
    """
    values: dict[str, Any] = {
        "status": JobStatus.IN_PROGRESS.value,
        "lease_owner": worker,
        "lease_expires_at": lease_until,
        "started_at": int(time.time()),
        "attempts": jobs.c.attempts + 1,
        "not_before": None,
    }
    if channel is not None:  # a fresh binding: whatever ran before is forgotten
        values.update(channel=channel, upstream_job_id=None, upstream_key_ref=None)
    result = await conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.status == JobStatus.QUEUED.value)
        .values(**values)
        .returning(*_JOB_COLUMNS)
    )
    row = result.first()
    return _record(row) if row is not None else None


async def defer_queued(conn: AsyncConnection, job_ids: list[str], until: float) -> None:
    """Jobs no channel can take now: look at them again at `until`, not at every tick."""
    if job_ids:
        await conn.execute(
            update(jobs)
            .where(jobs.c.id.in_(job_ids), jobs.c.status == JobStatus.QUEUED.value)
            .values(not_before=until)
        )


async def requeue_for_retry(
    conn: AsyncConnection, job_id: str, worker: str, not_before: float, count_attempt: bool
) -> bool:
    """Every channel failed to take the job: back to the queue, unbound, until `not_before`.

    Without `count_attempt` (no channel was even tried) the claim does not use up an attempt.
    """
    result = await conn.execute(
        update(jobs)
        .where(*_held(job_id, worker))
        .values(
            status=JobStatus.QUEUED.value,
            lease_owner=None,
            lease_expires_at=None,
            channel=None,
            upstream_job_id=None,
            upstream_key_ref=None,
            **_NO_INTENT,
            not_before=not_before,
            attempts=jobs.c.attempts if count_attempt else jobs.c.attempts - 1,
        )
    )
    return bool(result.rowcount)


async def in_progress_by_channel(conn: AsyncConnection) -> dict[str, int]:
    """Running jobs per channel, over every replica: what the concurrency limits count."""
    # MATERIALIZED: the running jobs first (`ix_jobs_status`), then the grouping; else SQLite
    # walks `ix_jobs_channel_created`, every job ever made, to group without sorting
    running = (
        select(jobs.c.channel)
        .where(jobs.c.status == JobStatus.IN_PROGRESS.value, jobs.c.channel.is_not(None))
        .cte("running")
        .prefix_with("MATERIALIZED")
    )
    rows = await conn.execute(select(running.c.channel, func.count()).group_by(running.c.channel))
    return {str(channel): int(count) for channel, count in rows}


_CHANNEL_SLOTS = 0x76726368  # "vrch": the advisory lock space of channel slot decisions


async def lock_channel_slots(conn: AsyncConnection, channels: set[str]) -> None:
    """Hold, until this writing transaction ends, the right to take these channels' slots, so
    that counting a channel's running jobs and claiming one more is one atomic decision across
    every worker. PostgreSQL: an advisory lock per channel, taken in name order (two claimers
    never wait on each other in a circle). SQLite: `BEGIN IMMEDIATE` already made this
    transaction the only writer."""
    if conn.dialect.name != "postgresql":
        return
    for name in sorted(channels):
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:space, hashtext(:name))"),
            {"space": _CHANNEL_SLOTS, "name": name},
        )


async def take_channel_slot(
    conn: AsyncConnection, job_id: str, worker: str, channel: str, max_concurrency: int
) -> bool:
    """Move a running job held by `worker` to `channel` (a failover), if the channel has a free
    slot; True when the job is on it (it already was, or now is). Locks the channel's slots."""
    current = await conn.scalar(select(jobs.c.channel).where(*_held(job_id, worker)))
    if current == channel:
        return True
    await lock_channel_slots(conn, {channel})
    running = await conn.scalar(
        select(func.count()).where(
            jobs.c.status == JobStatus.IN_PROGRESS.value, jobs.c.channel == channel
        )
    )
    if int(running or 0) >= max_concurrency:
        return False
    await conn.execute(update(jobs).where(*_held(job_id, worker)).values(channel=channel))
    return True


async def renew_leases(conn: AsyncConnection, worker: str, lease_until: float) -> None:
    await conn.execute(
        update(jobs)
        .where(jobs.c.lease_owner == worker, jobs.c.status == JobStatus.IN_PROGRESS.value)
        .values(lease_expires_at=lease_until)
    )


def _held(job_id: str, worker: str) -> tuple[ColumnElement[bool], ...]:
    """The job, while `worker` still holds it running: a write a lapsed lease must not make."""
    return (
        jobs.c.id == job_id,
        jobs.c.lease_owner == worker,
        jobs.c.status == JobStatus.IN_PROGRESS.value,
    )


_NO_INTENT: dict[str, Any] = {"intent_channel": None, "intent_key_ref": None, "intent_token": None}


async def record_intent(
    conn: AsyncConnection, job_id: str, worker: str, intent: SubmissionIntent
) -> bool:
    """Written before a submission is sent (see `SubmissionIntent`); False when `worker` no
    longer holds the job, which then must not be submitted."""
    result = await conn.execute(
        update(jobs)
        .where(*_held(job_id, worker))
        .values(
            intent_channel=intent.channel,
            intent_key_ref=intent.key_ref,
            intent_token=intent.token,
        )
    )
    return bool(result.rowcount)


async def settle_lost_intent(conn: AsyncConnection, job_id: str, worker: str) -> None:
    """An earlier run's submission could not be found again: count it as possibly orphaned
    upstream and forget the intent."""
    await conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.lease_owner == worker)
        .values(orphaned_submissions=jobs.c.orphaned_submissions + 1, **_NO_INTENT)
    )


async def record_submission(
    conn: AsyncConnection,
    job_id: str,
    worker: str,
    channel: str,
    upstream_job_id: str,
    key_ref: str | None = None,
    *,
    key_hint: str | None = None,
) -> bool:
    """The upstream took the job. The first submission starts the deadline clock; the
    timeline names the channel and the key's hint (`key_hint`), never the key.

    False when `worker` no longer holds the job (its lease lapsed and it was taken over).
    """
    result = await conn.execute(
        update(jobs)
        .where(*_held(job_id, worker))
        .values(
            channel=channel,
            upstream_job_id=upstream_job_id,
            upstream_key_ref=key_ref,
            submitted_at=func.coalesce(jobs.c.submitted_at, int(time.time())),
            **_NO_INTENT,
        )
    )
    if not result.rowcount:
        return False
    await record_events(conn, [events.submitted(job_id, channel, key_hint)])
    return True


async def record_progress(
    conn: AsyncConnection,
    worker: str,
    progress: dict[str, int],
    observed: Sequence[JobEvent] = (),
) -> None:
    """Several jobs' progress in one statement (the runner buffers it between ticks), with
    the upstream status changes `observed` meanwhile, for the jobs `worker` still holds."""
    if observed:
        held = set(
            (
                await conn.execute(
                    select(jobs.c.id).where(
                        jobs.c.id.in_({event.job_id for event in observed}),
                        jobs.c.lease_owner == worker,
                        jobs.c.status == JobStatus.IN_PROGRESS.value,
                    )
                )
            ).scalars()
        )
        await record_events(conn, [event for event in observed if event.job_id in held])
    if not progress:
        return
    await conn.execute(
        update(jobs)
        .where(
            jobs.c.id == bindparam("job_id"),
            jobs.c.lease_owner == worker,
            jobs.c.status == JobStatus.IN_PROGRESS.value,
            jobs.c.progress < bindparam("new_progress"),
        )
        .values(progress=bindparam("new_progress")),
        [{"job_id": job_id, "new_progress": value} for job_id, value in progress.items()],
    )


async def mark_completed(
    conn: AsyncConnection,
    job_id: str,
    worker: str,
    expires_at: int,
    cost_micros: int = 0,
    upstream_video_ref: str | None = None,
    timeline: Sequence[JobEvent] = (),
) -> bool:
    """Complete a job; `cost_micros` is what the upstream charged us for it (for margins),
    `upstream_video_ref` the upstream's own reference of the video, where it reported one.
    `timeline`: the events that led here (collected, …), written only with the completion."""
    finished = time.time()
    result = await conn.execute(
        update(jobs)
        .where(*_held(job_id, worker))
        .values(
            status=JobStatus.COMPLETED.value,
            progress=100,
            completed_at=int(finished),
            finished_ts=finished,
            expires_at=expires_at,
            cost_micros=cost_micros,
            upstream_video_ref=upstream_video_ref,
            lease_owner=None,
            lease_expires_at=None,
        )
        .returning(jobs.c.tenant_id, jobs.c.callback_url)
    )
    row = result.first()
    if row is None:
        return False
    await record_events(conn, [*timeline, events.completed(job_id, finished)])
    await enqueue_video_event(
        conn,
        job_id=job_id,
        tenant_id=row.tenant_id,
        callback_url=row.callback_url,
        event_type=EventType.VIDEO_COMPLETED,
    )
    return True


async def fail_and_refund(
    conn: AsyncConnection,
    job_id: str,
    code: str,
    message: str,
    worker: str | None = None,
    timeline: Sequence[JobEvent] = (),
) -> bool:
    """Mark an unfinished job failed, refund its charge and queue its `video.failed` event,
    exactly once; the timeline gets `timeline` (what led here), then failed and refunded.

    Returns False when the job had already reached a terminal state (someone else won).
    """
    condition = [jobs.c.id == job_id, jobs.c.status.in_(_UNFINISHED_VALUES)]
    if worker is not None:
        condition.append(jobs.c.lease_owner == worker)
    finished = time.time()
    result = await conn.execute(
        update(jobs)
        .where(*condition)
        .values(
            status=JobStatus.FAILED.value,
            error_code=code,
            error_message=message,
            completed_at=int(finished),
            finished_ts=finished,
            lease_owner=None,
            lease_expires_at=None,
        )
        .returning(jobs.c.tenant_id, jobs.c.key_id, jobs.c.price_micros, jobs.c.callback_url)
    )
    row = result.first()
    if row is None:
        return False
    await record_events(
        conn,
        [
            *timeline,
            events.failed(job_id, code, message, finished),
            *([events.refunded(job_id, row.price_micros, finished)] if row.price_micros else []),
        ],
    )
    await enqueue_video_event(
        conn,
        job_id=job_id,
        tenant_id=row.tenant_id,
        callback_url=row.callback_url,
        event_type=EventType.VIDEO_FAILED,
    )
    if row.price_micros:
        await conn.execute(
            update(tenants)
            .where(tenants.c.id == row.tenant_id)
            .values(balance_micros=tenants.c.balance_micros + row.price_micros)
        )
        await conn.execute(
            update(api_keys)
            .where(api_keys.c.id == row.key_id, api_keys.c.spend_limit_micros.is_not(None))
            .values(spent_micros=api_keys.c.spent_micros - row.price_micros)
        )
        await insert_ledger_entry(
            conn,
            row.tenant_id,
            "refund",
            row.price_micros,
            note=f"refund: {code}",
            actor="system",
            job_id=job_id,
        )
    return True


async def release_expired_leases(conn: AsyncConnection, now: float, max_attempts: int) -> list[str]:
    """Put back in the queue the running jobs whose worker died (lease lapsed).

    A job that has used up its attempts is returned so the caller can fail and refund it.
    """
    return await _release(conn, jobs.c.lease_expires_at < now, max_attempts)


async def take_back_leases(
    conn: AsyncConnection, prefix: str, worker: str, max_attempts: int
) -> list[str]:
    """Put back in the queue, at once, the running jobs of a dead process whose slot this
    worker now holds (lease owners starting with `prefix`, but not `worker` itself); as
    `release_expired_leases`, the jobs out of attempts are returned to fail and refund."""
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    owned = and_(jobs.c.lease_owner.like(escaped + "%", escape="\\"), jobs.c.lease_owner != worker)
    return await _release(conn, owned, max_attempts)


async def _release(
    conn: AsyncConnection, condition: ColumnElement[bool], max_attempts: int
) -> list[str]:
    expired = (
        await conn.execute(
            select(jobs.c.id, jobs.c.attempts, jobs.c.lease_owner).where(
                jobs.c.status == JobStatus.IN_PROGRESS.value, condition
            )
        )
    ).all()
    exhausted: list[str] = []
    for job in expired:
        if job.attempts >= max_attempts:
            exhausted.append(job.id)
            continue
        await conn.execute(
            update(jobs)
            .where(
                jobs.c.id == job.id,
                jobs.c.status == JobStatus.IN_PROGRESS.value,
                jobs.c.lease_owner == job.lease_owner,
            )
            .values(status=JobStatus.QUEUED.value, lease_owner=None, lease_expires_at=None)
        )
    return exhausted


async def requeue_owned(conn: AsyncConnection, worker: str) -> None:
    """Hand a stopping worker's running jobs back to the queue; a clean stop costs no attempt."""
    await conn.execute(
        update(jobs)
        .where(jobs.c.lease_owner == worker, jobs.c.status == JobStatus.IN_PROGRESS.value)
        .values(
            status=JobStatus.QUEUED.value,
            lease_owner=None,
            lease_expires_at=None,
            attempts=jobs.c.attempts - 1,
        )
    )


async def jobs_with_expired_media(conn: AsyncConnection, now: int, limit: int) -> list[str]:
    """Finished jobs whose download window has passed and whose files are still on disk."""
    rows = await conn.execute(
        select(jobs.c.id)
        .where(
            jobs.c.status == JobStatus.COMPLETED.value,
            jobs.c.expires_at < now,
            jobs.c.media_purged_at.is_(None),
        )
        .limit(limit)
    )
    return [row.id for row in rows]


async def mark_media_purged(conn: AsyncConnection, job_ids: list[str]) -> None:
    if job_ids:
        await conn.execute(
            update(jobs).where(jobs.c.id.in_(job_ids)).values(media_purged_at=int(time.time()))
        )
        await record_events(conn, [JobEvent(job_id, EventKind.EXPIRED) for job_id in job_ids])
