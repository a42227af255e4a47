"""Tenants, their API keys and their balance (a cached sum of the ledger)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.domain.errors import InvalidRequest, NotFound
from vidrelay.domain.jobs import StatusStyle
from vidrelay.domain.keys import hash_api_key, key_hint, new_api_key, new_key_id, new_tenant_id
from vidrelay.store.tables import api_keys, jobs, ledger_entries, tenants


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    balance_micros: int


@dataclass(frozen=True)
class Principal:
    """Who is calling: resolved from a bearer key on every request."""

    tenant_id: str
    key_id: str
    status_style: StatusStyle | None


@dataclass(frozen=True)
class KeyInfo:
    id: str
    tenant_name: str
    hint: str
    created_at: int
    revoked_at: int | None


async def find_tenant(conn: AsyncConnection, name: str) -> Tenant | None:
    row = (
        await conn.execute(
            select(tenants.c.id, tenants.c.name, tenants.c.balance_micros).where(
                tenants.c.name == name
            )
        )
    ).first()
    return Tenant(row.id, row.name, row.balance_micros) if row else None


async def ensure_tenant(conn: AsyncConnection, name: str) -> Tenant:
    existing = await find_tenant(conn, name)
    if existing:
        return existing
    tenant = Tenant(new_tenant_id(), name, 0)
    await conn.execute(
        insert(tenants).values(
            id=tenant.id, name=name, balance_micros=0, created_at=int(time.time())
        )
    )
    return tenant


async def top_up(conn: AsyncConnection, tenant_id: str, micros: int, note: str) -> None:
    if micros <= 0:
        raise InvalidRequest("a top-up must be a positive amount", param="balance")
    await conn.execute(
        update(tenants)
        .where(tenants.c.id == tenant_id)
        .values(balance_micros=tenants.c.balance_micros + micros)
    )
    await conn.execute(
        insert(ledger_entries).values(
            tenant_id=tenant_id,
            kind="top_up",
            amount_micros=micros,
            note=note,
            created_at=int(time.time()),
        )
    )


async def create_key(
    conn: AsyncConnection, tenant_id: str, status_style: StatusStyle | None = None
) -> tuple[str, str]:
    """Create a key; returns (key id, the key in clear). The clear key is never stored."""
    key = new_api_key()
    key_id = new_key_id()
    await conn.execute(
        insert(api_keys).values(
            id=key_id,
            tenant_id=tenant_id,
            key_hash=hash_api_key(key),
            hint=key_hint(key),
            status_style=status_style.value if status_style else None,
            created_at=int(time.time()),
        )
    )
    return key_id, key


async def list_keys(conn: AsyncConnection) -> list[KeyInfo]:
    rows = await conn.execute(
        select(
            api_keys.c.id,
            tenants.c.name,
            api_keys.c.hint,
            api_keys.c.created_at,
            api_keys.c.revoked_at,
        )
        .join(tenants, tenants.c.id == api_keys.c.tenant_id)
        .order_by(api_keys.c.created_at, api_keys.c.id)
    )
    return [KeyInfo(r.id, r.name, r.hint, r.created_at, r.revoked_at) for r in rows]


async def revoke_key(conn: AsyncConnection, key_or_id: str) -> str:
    """Revoke by key id or by the key itself; returns the key id."""
    result = await conn.execute(
        update(api_keys)
        .where(
            or_(api_keys.c.id == key_or_id, api_keys.c.key_hash == hash_api_key(key_or_id)),
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=int(time.time()))
        .returning(api_keys.c.id)
    )
    row = result.first()
    if row is None:
        raise NotFound(f"no active key matches {key_or_id!r}")
    return str(row.id)


async def authenticate(conn: AsyncConnection, key: str) -> Principal | None:
    row = (
        await conn.execute(
            select(api_keys.c.tenant_id, api_keys.c.id, api_keys.c.status_style).where(
                api_keys.c.key_hash == hash_api_key(key), api_keys.c.revoked_at.is_(None)
            )
        )
    ).first()
    if row is None:
        return None
    style = StatusStyle(row.status_style) if row.status_style else None
    return Principal(tenant_id=row.tenant_id, key_id=row.id, status_style=style)


async def tenant_balance(conn: AsyncConnection, tenant_id: str) -> int:
    value = await conn.scalar(select(tenants.c.balance_micros).where(tenants.c.id == tenant_id))
    return int(value or 0)


async def ledger_sum(conn: AsyncConnection, tenant_id: str) -> int:
    """The balance as the ledger says it; equals the cached balance in a consistent store."""
    value = await conn.scalar(
        select(func.coalesce(func.sum(ledger_entries.c.amount_micros), 0)).where(
            ledger_entries.c.tenant_id == tenant_id
        )
    )
    return int(value or 0)


async def count_jobs(conn: AsyncConnection, tenant_id: str) -> int:
    value = await conn.scalar(
        select(func.count()).select_from(jobs).where(jobs.c.tenant_id == tenant_id)
    )
    return int(value or 0)
