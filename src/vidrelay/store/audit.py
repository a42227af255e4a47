"""The audit log: one row per operator action, written by the use case in its own
transaction (services/), read newest first by pages.

Details are a small JSON object the use case chooses: amounts, names, ids, URLs without their
query; never a key nor a secret (services/ keep them out, tests scan the rows).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.domain.audit import Actor
from vidrelay.store.tables import audit_log


@dataclass(frozen=True)
class AuditEntry:
    id: int
    created_at: int
    action: str
    target: str
    details: dict[str, Any]
    actor_kind: str
    actor_address: str | None
    actor_tenant_id: str | None


async def record(
    conn: AsyncConnection,
    actor: Actor,
    action: str,
    target: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Add a row in the caller's transaction: it commits or rolls back with the action."""
    await conn.execute(
        insert(audit_log).values(
            created_at=int(time.time()),
            action=action,
            target=target[:200],
            details=json.dumps(details or {}, sort_keys=True, default=str),
            actor_kind=actor.kind.value,
            actor_address=actor.address[:100] if actor.address else None,
            actor_tenant_id=actor.tenant_id,
        )
    )


async def list_entries(
    conn: AsyncConnection,
    *,
    limit: int,
    before_id: int | None = None,
    action: str | None = None,
    target: str | None = None,
) -> list[AuditEntry]:
    """Newest first, those older than `before_id`; one index range whatever the filter
    (`(action, id)`, `(target, id)` or the primary key)."""
    query = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(audit_log.c.id < before_id)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    if target is not None:
        query = query.where(audit_log.c.target == target)
    rows = (await conn.execute(query)).all()
    return [
        AuditEntry(
            id=row.id,
            created_at=row.created_at,
            action=row.action,
            target=row.target,
            details=json.loads(row.details),
            actor_kind=row.actor_kind,
            actor_address=row.actor_address,
            actor_tenant_id=row.actor_tenant_id,
        )
        for row in rows
    ]
