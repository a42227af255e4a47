"""Tenants, their API keys and their balance (a cached sum of the ledger)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.domain.errors import Conflict, InvalidRequest, NotFound
from vidrelay.domain.jobs import StatusStyle
from vidrelay.domain.keys import (
    KeySpec,
    hash_api_key,
    key_hint,
    new_api_key,
    new_key_id,
    new_tenant_id,
)
from vidrelay.domain.limits import Limits
from vidrelay.domain.webhooks import new_webhook_secret
from vidrelay.store.tables import api_keys, jobs, ledger_entries, tenant_groups, tenants


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
    key_limits: Limits = field(default_factory=Limits)
    tenant_limits: Limits = field(default_factory=Limits)
    multiplier_ppm: int = 1_000_000
    key_has_spend_limit: bool = False
    key_expires_at: int | None = None
    key_models: tuple[str, ...] | None = None
    """The only models the key may order; None for every model."""


@dataclass(frozen=True)
class KeyInfo:
    """A key as an operator sees it: never the key, nor its hash."""

    id: str
    tenant_name: str
    hint: str
    created_at: int
    revoked_at: int | None
    name: str | None = None
    expires_at: int | None = None
    models: tuple[str, ...] | None = None


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
    return existing or await create_tenant(conn, name)


async def create_tenant(conn: AsyncConnection, name: str) -> Tenant:
    """A new tenant with a zero balance; 409 if the name is taken (also by a racing create)."""
    tenant = Tenant(new_tenant_id(), name, 0)
    try:
        await conn.execute(
            insert(tenants).values(
                id=tenant.id,
                name=name,
                balance_micros=0,
                created_at=int(time.time()),
                webhook_secret=new_webhook_secret(),
            )
        )
    except IntegrityError as error:
        raise Conflict(
            f"A tenant named {name!r} already exists.", param="name", code="tenant_exists"
        ) from error
    return tenant


async def top_up(
    conn: AsyncConnection, tenant_id: str, micros: int, note: str, actor: str = "cli"
) -> None:
    if micros <= 0:
        raise InvalidRequest("a top-up must be a positive amount", param="amount_usd")
    await _credit(conn, tenant_id, micros, kind="top_up", note=note, actor=actor)


async def adjust(conn: AsyncConnection, tenant_id: str, micros: int, note: str, actor: str) -> None:
    """A signed correction by the operator; it may not take the balance below zero."""
    if micros == 0:
        raise InvalidRequest("an adjustment must be non-zero", param="amount_usd")
    if not note.strip():
        raise InvalidRequest("an adjustment needs a reason", param="note")
    result = await conn.execute(
        update(tenants)
        .where(tenants.c.id == tenant_id, tenants.c.balance_micros + micros >= 0)
        .values(balance_micros=tenants.c.balance_micros + micros)
    )
    if result.rowcount != 1:
        raise InvalidRequest("the adjustment would make the balance negative", param="amount_usd")
    await insert_ledger_entry(conn, tenant_id, "adjustment", micros, note=note, actor=actor)


async def _credit(
    conn: AsyncConnection, tenant_id: str, micros: int, *, kind: str, note: str, actor: str
) -> None:
    await conn.execute(
        update(tenants)
        .where(tenants.c.id == tenant_id)
        .values(balance_micros=tenants.c.balance_micros + micros)
    )
    await insert_ledger_entry(conn, tenant_id, kind, micros, note=note, actor=actor)


async def insert_ledger_entry(
    conn: AsyncConnection,
    tenant_id: str,
    kind: str,
    micros: int,
    *,
    note: str,
    actor: str,
    job_id: str | None = None,
) -> None:
    await conn.execute(
        insert(ledger_entries).values(
            tenant_id=tenant_id,
            kind=kind,
            amount_micros=micros,
            job_id=job_id,
            note=note,
            actor=actor,
            created_at=int(time.time()),
        )
    )


async def create_key(
    conn: AsyncConnection, tenant_id: str, spec: KeySpec | None = None
) -> tuple[str, str]:
    """Create a key; returns (key id, the key in clear). The clear key is never stored."""
    spec = spec or KeySpec()
    key = new_api_key()
    key_id = new_key_id()
    await conn.execute(
        insert(api_keys).values(
            id=key_id,
            tenant_id=tenant_id,
            key_hash=hash_api_key(key),
            hint=key_hint(key),
            status_style=spec.status_style.value if spec.status_style else None,
            created_at=int(time.time()),
            rpm=spec.limits.rpm,
            max_in_flight=spec.limits.max_in_flight,
            spend_limit_micros=spec.spend_limit_micros,
            spent_micros=0,
            name=spec.name,
            expires_at=spec.expires_at,
            models=json.dumps(spec.models) if spec.models is not None else None,
        )
    )
    return key_id, key


def _key_models(stored: str | None) -> tuple[str, ...] | None:
    return tuple(json.loads(stored)) if stored is not None else None


def _key_infos() -> Select[Any]:
    return select(
        api_keys.c.id,
        tenants.c.name.label("tenant_name"),
        api_keys.c.hint,
        api_keys.c.created_at,
        api_keys.c.revoked_at,
        api_keys.c.name,
        api_keys.c.expires_at,
        api_keys.c.models,
    ).join(tenants, tenants.c.id == api_keys.c.tenant_id)


def _key_info(row: Row[Any]) -> KeyInfo:
    return KeyInfo(
        id=row.id,
        tenant_name=row.tenant_name,
        hint=row.hint,
        created_at=int(row.created_at),
        revoked_at=row.revoked_at,
        name=row.name,
        expires_at=row.expires_at,
        models=_key_models(row.models),
    )


async def list_keys(conn: AsyncConnection, tenant_id: str | None = None) -> list[KeyInfo]:
    """Oldest first; with `tenant_id`, that tenant's only."""
    query = _key_infos()
    if tenant_id is not None:
        query = query.where(api_keys.c.tenant_id == tenant_id)
    rows = await conn.execute(query.order_by(api_keys.c.created_at, api_keys.c.id))
    return [_key_info(row) for row in rows]


async def find_key(conn: AsyncConnection, key_or_id: str) -> KeyInfo | None:
    """A key, revoked or not, by its id or by the key itself."""
    row = (
        await conn.execute(
            _key_infos().where(
                or_(api_keys.c.id == key_or_id, api_keys.c.key_hash == hash_api_key(key_or_id))
            )
        )
    ).first()
    return _key_info(row) if row else None


async def tenant_key(conn: AsyncConnection, tenant_id: str, key_id: str) -> KeyInfo | None:
    """A key of this tenant's, revoked or not, by its id (None for another tenant's)."""
    query = _key_infos().where(api_keys.c.id == key_id, api_keys.c.tenant_id == tenant_id)
    row = (await conn.execute(query)).first()
    return _key_info(row) if row else None


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


def _principals() -> Select[Any]:
    return (
        select(
            api_keys.c.tenant_id,
            api_keys.c.id,
            api_keys.c.status_style,
            api_keys.c.rpm,
            api_keys.c.max_in_flight,
            api_keys.c.spend_limit_micros,
            api_keys.c.expires_at,
            api_keys.c.models,
            tenants.c.rpm.label("tenant_rpm"),
            tenants.c.max_in_flight.label("tenant_max_in_flight"),
            func.coalesce(tenant_groups.c.multiplier_ppm, 1_000_000).label("multiplier"),
        )
        .join(tenants, tenants.c.id == api_keys.c.tenant_id)
        .outerjoin(tenant_groups, tenant_groups.c.name == tenants.c.group_name)
        .where(api_keys.c.revoked_at.is_(None))
    )


def _principal(row: Row[Any]) -> Principal:
    return Principal(
        tenant_id=row.tenant_id,
        key_id=row.id,
        status_style=StatusStyle(row.status_style) if row.status_style else None,
        key_limits=Limits(row.rpm, row.max_in_flight),
        tenant_limits=Limits(row.tenant_rpm, row.tenant_max_in_flight),
        multiplier_ppm=int(row.multiplier),
        key_has_spend_limit=row.spend_limit_micros is not None,
        key_expires_at=row.expires_at,
        key_models=_key_models(row.models),
    )


async def authenticate(conn: AsyncConnection, key: str) -> Principal | None:
    query = _principals().where(api_keys.c.key_hash == hash_api_key(key))
    row = (await conn.execute(query)).first()
    return _principal(row) if row else None


async def principal_of_key(conn: AsyncConnection, key_id: str) -> Principal | None:
    """The caller an unrevoked key stands for, by the key's id: the web portal's session
    names its key by id, never holding the key itself."""
    row = (await conn.execute(_principals().where(api_keys.c.id == key_id))).first()
    return _principal(row) if row else None


async def debit(conn: AsyncConnection, tenant_id: str, micros: int) -> bool:
    """Take `micros` from the tenant's balance in one guarded statement, never below zero;
    False (nothing taken) when the balance is short. The caller writes the ledger entry."""
    taken = await conn.execute(
        update(tenants)
        .where(tenants.c.id == tenant_id, tenants.c.balance_micros >= micros)
        .values(balance_micros=tenants.c.balance_micros - micros)
    )
    return taken.rowcount == 1


async def count_key_spend(conn: AsyncConnection, key_id: str, micros: int) -> bool:
    """Count `micros` toward the key's spending limit, if it has one; False (nothing counted)
    when that would pass the limit. Jobs and priced characters alike."""
    counted = await conn.execute(
        update(api_keys)
        .where(
            api_keys.c.id == key_id,
            api_keys.c.spend_limit_micros.is_not(None),
            api_keys.c.spent_micros + micros <= api_keys.c.spend_limit_micros,
        )
        .values(spent_micros=api_keys.c.spent_micros + micros)
    )
    if counted.rowcount == 1:
        return True
    limit = await conn.scalar(select(api_keys.c.spend_limit_micros).where(api_keys.c.id == key_id))
    return limit is None


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


@dataclass(frozen=True)
class TenantSummary:
    id: str
    name: str
    group: str
    balance_micros: int
    jobs: int
    rpm: int | None
    max_in_flight: int | None
    created_at: int
    webhook_secret: str | None


def _tenant_summaries() -> Select[Any]:
    job_counts = (
        select(jobs.c.tenant_id, func.count().label("jobs")).group_by(jobs.c.tenant_id).subquery()
    )
    return (
        select(
            tenants.c.id,
            tenants.c.name,
            tenants.c.group_name,
            tenants.c.balance_micros,
            func.coalesce(job_counts.c.jobs, 0).label("jobs"),
            tenants.c.rpm,
            tenants.c.max_in_flight,
            tenants.c.created_at,
            tenants.c.webhook_secret,
        )
        .outerjoin(job_counts, job_counts.c.tenant_id == tenants.c.id)
        .order_by(tenants.c.name)
    )


def _summary(row: Row[Any]) -> TenantSummary:
    return TenantSummary(
        id=row.id,
        name=row.name,
        group=row.group_name,
        balance_micros=int(row.balance_micros),
        jobs=int(row.jobs),
        rpm=row.rpm,
        max_in_flight=row.max_in_flight,
        created_at=int(row.created_at),
        webhook_secret=row.webhook_secret,
    )


async def tenant_summary(conn: AsyncConnection, name: str) -> TenantSummary:
    row = (await conn.execute(_tenant_summaries().where(tenants.c.name == name))).first()
    if row is None:
        raise NotFound(f"No tenant named {name!r}.", param="tenant")
    return _summary(row)


async def list_tenants(conn: AsyncConnection) -> list[TenantSummary]:
    return [_summary(row) for row in await conn.execute(_tenant_summaries())]


async def set_tenant_options(
    conn: AsyncConnection,
    tenant_id: str,
    *,
    group: str | None = None,
    limits: Limits | None = None,
) -> None:
    values: dict[str, Any] = {}
    if group is not None:
        exists = await conn.scalar(
            select(tenant_groups.c.name).where(tenant_groups.c.name == group)
        )
        if exists is None:
            raise InvalidRequest(f"No tenant group named {group!r}.", param="group")
        values["group_name"] = group
    if limits is not None:
        values.update(rpm=limits.rpm, max_in_flight=limits.max_in_flight)
    if values:
        await conn.execute(update(tenants).where(tenants.c.id == tenant_id).values(**values))


async def set_group(conn: AsyncConnection, name: str, multiplier_ppm: int) -> None:
    updated = await conn.execute(
        update(tenant_groups)
        .where(tenant_groups.c.name == name)
        .values(multiplier_ppm=multiplier_ppm)
    )
    if updated.rowcount == 0:
        await conn.execute(
            insert(tenant_groups).values(
                name=name, multiplier_ppm=multiplier_ppm, created_at=int(time.time())
            )
        )


async def list_groups(conn: AsyncConnection) -> dict[str, int]:
    rows = await conn.execute(select(tenant_groups.c.name, tenant_groups.c.multiplier_ppm))
    return {row.name: int(row.multiplier_ppm) for row in rows}


@dataclass(frozen=True)
class LedgerEntry:
    id: int
    tenant: str
    kind: str
    amount_micros: int
    job_id: str | None
    note: str | None
    actor: str | None
    created_at: int


async def list_ledger(
    conn: AsyncConnection,
    *,
    tenant_id: str | None = None,
    kind: str | None = None,
    job_id: str | None = None,
    since: int | None = None,
    until: int | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[LedgerEntry]:
    """Newest first; page with `before_id` (the last id of the previous page)."""
    query = select(
        ledger_entries.c.id,
        tenants.c.name,
        ledger_entries.c.kind,
        ledger_entries.c.amount_micros,
        ledger_entries.c.job_id,
        ledger_entries.c.note,
        ledger_entries.c.actor,
        ledger_entries.c.created_at,
    ).join(tenants, tenants.c.id == ledger_entries.c.tenant_id)
    conditions = {
        ledger_entries.c.tenant_id: tenant_id,
        ledger_entries.c.kind: kind,
        ledger_entries.c.job_id: job_id,
    }
    for column, value in conditions.items():
        if value is not None:
            query = query.where(column == value)
    if since is not None:
        query = query.where(ledger_entries.c.created_at >= since)
    if until is not None:
        query = query.where(ledger_entries.c.created_at < until)
    if before_id is not None:
        query = query.where(ledger_entries.c.id < before_id)
    rows = await conn.execute(query.order_by(ledger_entries.c.id.desc()).limit(limit))
    return [
        LedgerEntry(
            id=row.id,
            tenant=row.name,
            kind=row.kind,
            amount_micros=int(row.amount_micros),
            job_id=row.job_id,
            note=row.note,
            actor=row.actor,
            created_at=int(row.created_at),
        )
        for row in rows
    ]


async def tenant_name(conn: AsyncConnection, tenant_id: str) -> str | None:
    name = await conn.scalar(select(tenants.c.name).where(tenants.c.id == tenant_id))
    return None if name is None else str(name)
