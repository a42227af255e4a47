"""What the operator console's pages read that no other entrypoint does: tenants by name
prefix, one tenant's own row, webhook deliveries by status and one delivery with its attempts.

Each reads one page (keyset paging, never OFFSET). Tenants are a range of the unique index
on their name, so a page costs the same with 10,000 of them; deliveries of one status are
ordered by time without an index of their own (one needs a migration), so that page costs
what sorting that status's deliveries costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.store.tables import (
    tenants,
    webhook_attempts,
    webhook_deliveries,
    webhook_events,
)


@dataclass(frozen=True)
class TenantRow:
    id: str
    name: str
    group: str
    balance_micros: int
    rpm: int | None
    max_in_flight: int | None
    created_at: int


def _tenant_row(row: Any) -> TenantRow:
    return TenantRow(
        id=row.id,
        name=row.name,
        group=row.group_name,
        balance_micros=int(row.balance_micros),
        rpm=row.rpm,
        max_in_flight=row.max_in_flight,
        created_at=int(row.created_at),
    )


def _after_prefix(prefix: str) -> str:
    """The least string above every string that starts with `prefix` (binary order)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


async def search_tenants(
    conn: AsyncConnection, prefix: str, *, after: str | None, limit: int
) -> tuple[list[TenantRow], bool]:
    """Tenants whose name starts with `prefix`, by name, those after `after`; and whether more
    follow. A range over the unique index on the name (LIKE would not use it everywhere)."""
    query = select(tenants).order_by(tenants.c.name).limit(limit + 1)
    if prefix:
        query = query.where(
            tenants.c.name >= prefix,
            tenants.c.name < _after_prefix(prefix),
            func.substr(tenants.c.name, 1, len(prefix)) == prefix,  # whatever the collation
        )
    if after is not None:
        query = query.where(tenants.c.name > after)
    rows = [_tenant_row(row) for row in await conn.execute(query)]
    return rows[:limit], len(rows) > limit


async def find_tenant_row(conn: AsyncConnection, name: str) -> TenantRow | None:
    """A tenant's own row, without the count of its jobs `tenant_summary` adds (a scan)."""
    row = (await conn.execute(select(tenants).where(tenants.c.name == name))).first()
    return _tenant_row(row) if row else None


@dataclass(frozen=True)
class DeliveryRow:
    id: str
    event_id: str
    event_type: str
    job_id: str
    tenant: str | None
    url: str
    status: str
    attempts: int
    next_attempt_at: float | None
    last_status_code: int | None
    last_error: str | None
    created_at: int
    delivered_at: int | None


@dataclass(frozen=True)
class AttemptRow:
    attempted_at: int
    status_code: int | None
    latency_ms: int
    error: str | None


def _deliveries() -> Any:
    return (
        select(
            webhook_deliveries,
            webhook_events.c.type.label("event_type"),
            webhook_events.c.job_id,
            tenants.c.name.label("tenant"),
        )
        .join(webhook_events, webhook_events.c.id == webhook_deliveries.c.event_id)
        .outerjoin(tenants, tenants.c.id == webhook_deliveries.c.tenant_id)
    )


def _delivery_row(row: Any) -> DeliveryRow:
    return DeliveryRow(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        job_id=row.job_id,
        tenant=row.tenant,
        url=row.url,
        status=row.status,
        attempts=int(row.attempts),
        next_attempt_at=row.next_attempt_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=int(row.created_at),
        delivered_at=row.delivered_at,
    )


async def list_deliveries(
    conn: AsyncConnection,
    *,
    status: str | None,
    before: tuple[int, str] | None,
    limit: int,
) -> tuple[list[DeliveryRow], bool]:
    """Newest first, those before the `(created_at, id)` of the previous page's last row;
    and whether more follow."""
    query = (
        _deliveries()
        .order_by(webhook_deliveries.c.created_at.desc(), webhook_deliveries.c.id.desc())
        .limit(limit + 1)
    )
    if status is not None:
        query = query.where(webhook_deliveries.c.status == status)
    if before is not None:
        created_at, delivery_id = before
        query = query.where(
            or_(
                webhook_deliveries.c.created_at < created_at,
                and_(
                    webhook_deliveries.c.created_at == created_at,
                    webhook_deliveries.c.id < delivery_id,
                ),
            )
        )
    rows = [_delivery_row(row) for row in await conn.execute(query)]
    return rows[:limit], len(rows) > limit


async def find_delivery(
    conn: AsyncConnection, delivery_id: str
) -> tuple[DeliveryRow, list[AttemptRow]] | None:
    """A delivery and its attempts, oldest first."""
    row = (await conn.execute(_deliveries().where(webhook_deliveries.c.id == delivery_id))).first()
    if row is None:
        return None
    attempts = await conn.execute(
        select(webhook_attempts)
        .where(webhook_attempts.c.delivery_id == delivery_id)
        .order_by(webhook_attempts.c.id)
    )
    return _delivery_row(row), [
        AttemptRow(a.attempted_at, a.status_code, a.latency_ms, a.error) for a in attempts
    ]
