"""The webhook outbox: events written in the same transaction as a job's terminal state, one
delivery per destination, and every attempt recorded for the operator."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.domain import events
from vidrelay.domain.errors import NotFound
from vidrelay.domain.webhooks import (
    EventType,
    new_delivery_id,
    new_endpoint_id,
    new_event_id,
    new_webhook_secret,
)
from vidrelay.store.job_events import record_events
from vidrelay.store.tables import (
    jobs,
    tenants,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
    webhook_events,
)

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


async def enqueue_video_event(
    conn: AsyncConnection,
    *,
    job_id: str,
    tenant_id: str,
    callback_url: str | None,
    event_type: EventType,
) -> str:
    """Write the event and its deliveries; call inside the terminal transition's transaction."""
    now = time.time()
    event_id = new_event_id()
    await conn.execute(
        insert(webhook_events).values(
            id=event_id, tenant_id=tenant_id, type=event_type.value, job_id=job_id,
            created_at=int(now),
        )
    )  # fmt: skip
    destinations: list[tuple[str | None, str]] = []
    if callback_url:
        destinations.append((None, callback_url))
    endpoints = await conn.execute(
        select(webhook_endpoints.c.id, webhook_endpoints.c.url, webhook_endpoints.c.event_types)
        .where(webhook_endpoints.c.tenant_id == tenant_id)
        .order_by(webhook_endpoints.c.created_at)
    )
    destinations += [
        (row.id, row.url) for row in endpoints if event_type.value in row.event_types.split(",")
    ]
    for endpoint_id, url in destinations:
        await conn.execute(
            insert(webhook_deliveries).values(
                id=new_delivery_id(), event_id=event_id, tenant_id=tenant_id,
                endpoint_id=endpoint_id, url=url, status=PENDING, attempts=0,
                next_attempt_at=now, created_at=int(now),
            )
        )  # fmt: skip
    return event_id


@dataclass(frozen=True)
class DueDelivery:
    id: str
    event_id: str
    event_type: str
    event_created_at: int
    job_id: str
    channel: str | None
    """The job's channel, for the sender's log lines."""
    tenant_id: str
    url: str
    attempts: int
    payload: str | None
    secret: str


async def claim_due_deliveries(
    conn: AsyncConnection, now: float, lease_s: float, limit: int
) -> list[DueDelivery]:
    """Deliveries due now, each pushed `lease_s` into the future by compare-and-set, so two
    senders (replicas) never send the same attempt; a sender that dies mid-send leaves the
    delivery due again once the lease passes."""
    rows = (
        await conn.execute(
            select(
                webhook_deliveries.c.id,
                webhook_deliveries.c.next_attempt_at,
                webhook_deliveries.c.event_id,
                webhook_events.c.type,
                webhook_events.c.created_at,
                webhook_events.c.job_id,
                jobs.c.channel,
                webhook_deliveries.c.tenant_id,
                webhook_deliveries.c.url,
                webhook_deliveries.c.attempts,
                webhook_events.c.payload,
                tenants.c.webhook_secret,
            )
            .join(webhook_events, webhook_events.c.id == webhook_deliveries.c.event_id)
            .join(tenants, tenants.c.id == webhook_deliveries.c.tenant_id)
            .outerjoin(jobs, jobs.c.id == webhook_events.c.job_id)
            .where(
                webhook_deliveries.c.status == PENDING,
                webhook_deliveries.c.next_attempt_at <= now,
            )
            .order_by(webhook_deliveries.c.next_attempt_at)
            .limit(limit)
        )
    ).all()
    claimed: list[DueDelivery] = []
    for row in rows:
        taken = await conn.execute(
            update(webhook_deliveries)
            .where(
                webhook_deliveries.c.id == row.id,
                webhook_deliveries.c.status == PENDING,
                webhook_deliveries.c.next_attempt_at == row.next_attempt_at,
            )
            .values(next_attempt_at=now + lease_s)
        )
        if taken.rowcount == 1:
            claimed.append(
                DueDelivery(
                    id=row.id, event_id=row.event_id, event_type=row.type,
                    event_created_at=int(row.created_at), job_id=row.job_id,
                    channel=row.channel, tenant_id=row.tenant_id, url=row.url,
                    attempts=int(row.attempts), payload=row.payload,
                    secret=row.webhook_secret or "",
                )
            )  # fmt: skip
    return claimed


async def freeze_payload(conn: AsyncConnection, event_id: str, payload: str) -> str:
    """Store the event body once; every attempt and destination then sends the same bytes."""
    await conn.execute(
        update(webhook_events)
        .where(webhook_events.c.id == event_id, webhook_events.c.payload.is_(None))
        .values(payload=payload)
    )
    stored = await conn.scalar(
        select(webhook_events.c.payload).where(webhook_events.c.id == event_id)
    )
    return str(stored)


async def record_attempt(
    conn: AsyncConnection,
    delivery: DueDelivery,
    *,
    status_code: int | None,
    latency_ms: int,
    error: str | None,
    next_attempt_at: float | None,
    delivered: bool,
) -> None:
    """Log the attempt, here and on the job's timeline; the delivery is then delivered, due
    again at `next_attempt_at`, or (neither) failed for good."""
    delivery_id = delivery.id
    now = int(time.time())
    await conn.execute(
        insert(webhook_attempts).values(
            delivery_id=delivery_id, attempted_at=now, status_code=status_code,
            latency_ms=latency_ms, error=error,
        )
    )  # fmt: skip
    status = DELIVERED if delivered else (PENDING if next_attempt_at is not None else FAILED)
    await conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id == delivery_id)
        .values(
            status=status,
            attempts=webhook_deliveries.c.attempts + 1,
            next_attempt_at=next_attempt_at,
            last_status_code=status_code,
            last_error=error,
            delivered_at=now if delivered else None,
        )
    )
    await record_events(
        conn,
        [
            events.webhook_attempt(
                delivery.job_id, delivery_id, delivery.url, status_code, error, next_attempt_at
            )
        ],
    )


async def replay_delivery(conn: AsyncConnection, delivery_id: str) -> None:
    """Send a delivery again from the start of its schedule (same event, same webhook-id)."""
    result = await conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id == delivery_id)
        .values(status=PENDING, attempts=0, next_attempt_at=time.time(), delivered_at=None)
    )
    if result.rowcount == 0:
        raise NotFound(f"No delivery {delivery_id!r}.", param="delivery_id")


async def list_deliveries(
    conn: AsyncConnection,
    *,
    tenant_id: str | None = None,
    status: str | None = None,
    event_id: str | None = None,
    job_id: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    query = select(webhook_deliveries, webhook_events.c.type, webhook_events.c.job_id).join(
        webhook_events, webhook_events.c.id == webhook_deliveries.c.event_id
    )
    for column, value in (
        (webhook_deliveries.c.tenant_id, tenant_id),
        (webhook_deliveries.c.status, status),
        (webhook_deliveries.c.event_id, event_id),
        (webhook_events.c.job_id, job_id),
    ):
        if value is not None:
            query = query.where(column == value)
    rows = await conn.execute(query.order_by(webhook_deliveries.c.created_at.desc()).limit(limit))
    deliveries = [dict(row._mapping) for row in rows]
    if deliveries:
        attempts = await conn.execute(
            select(webhook_attempts)
            .where(webhook_attempts.c.delivery_id.in_([d["id"] for d in deliveries]))
            .order_by(webhook_attempts.c.id)
        )
        by_delivery: dict[str, list[dict[str, Any]]] = {}
        for attempt in attempts:
            by_delivery.setdefault(attempt.delivery_id, []).append(
                {key: value for key, value in attempt._mapping.items() if key != "delivery_id"}
            )
        for delivery in deliveries:
            delivery["attempt_log"] = by_delivery.get(delivery["id"], [])
    return deliveries


# --- endpoints and secrets --------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    id: str
    url: str
    event_types: tuple[str, ...]
    created_at: int


def _endpoint(row: Row[Any]) -> Endpoint:
    return Endpoint(row.id, row.url, tuple(row.event_types.split(",")), int(row.created_at))


async def create_endpoint(
    conn: AsyncConnection, tenant_id: str, url: str, event_types: tuple[str, ...]
) -> Endpoint:
    endpoint = Endpoint(new_endpoint_id(), url, event_types, int(time.time()))
    await conn.execute(
        insert(webhook_endpoints).values(
            id=endpoint.id, tenant_id=tenant_id, url=url, event_types=",".join(event_types),
            created_at=endpoint.created_at,
        )
    )  # fmt: skip
    return endpoint


async def list_endpoints(conn: AsyncConnection, tenant_id: str) -> list[Endpoint]:
    rows = await conn.execute(
        select(webhook_endpoints)
        .where(webhook_endpoints.c.tenant_id == tenant_id)
        .order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id)
    )
    return [_endpoint(row) for row in rows]


async def delete_endpoint(conn: AsyncConnection, tenant_id: str, endpoint_id: str) -> None:
    result = await conn.execute(
        delete(webhook_endpoints).where(
            webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.tenant_id == tenant_id
        )
    )
    if result.rowcount == 0:
        raise NotFound(f"No webhook endpoint {endpoint_id!r}.", param="webhook_id")


async def webhook_secret(conn: AsyncConnection, tenant_id: str) -> str:
    """The tenant's signing secret, created on first use (tenants made before webhooks)."""
    secret = await conn.scalar(select(tenants.c.webhook_secret).where(tenants.c.id == tenant_id))
    return str(secret) if secret else await rotate_secret(conn, tenant_id)


async def rotate_secret(conn: AsyncConnection, tenant_id: str) -> str:
    secret = new_webhook_secret()
    result = await conn.execute(
        update(tenants).where(tenants.c.id == tenant_id).values(webhook_secret=secret)
    )
    if result.rowcount == 0:
        raise NotFound("No such tenant.", param="tenant")
    return secret
