"""`/admin/audit`: every operator action, newest first (what, on what, by whom, from where).

Same token and conventions as the rest of `/admin` (api/admin.py). Rows are written by the use
cases (services/) in the transaction of the action; this only pages through them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from vidrelay.api.admin import MAX_LEDGER_ID, AdminRoute
from vidrelay.api.auth import Context
from vidrelay.store import audit
from vidrelay.store.audit import AuditEntry

router = APIRouter(prefix="/admin", route_class=AdminRoute, tags=["admin"])


def audit_entry_view(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "object": "audit_entry",
        "created_at": entry.created_at,
        "action": entry.action,
        "target": entry.target,
        "details": entry.details,
        "actor": {
            "kind": entry.actor_kind,
            "address": entry.actor_address,
            "tenant_id": entry.actor_tenant_id,
        },
    }


@router.get("/audit")
async def list_audit(
    context: Context,
    action: Annotated[str | None, Query(max_length=60)] = None,
    target: Annotated[str | None, Query(max_length=200)] = None,
    after: Annotated[int | None, Query(ge=1, le=MAX_LEDGER_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JSONResponse:
    """Newest first; the next page is `after=<last_id of this page>`."""
    async with context.db.read() as conn:
        entries = await audit.list_entries(
            conn, limit=limit + 1, before_id=after, action=action, target=target
        )
    page = entries[:limit]
    return JSONResponse(
        {
            "object": "list",
            "data": [audit_entry_view(entry) for entry in page],
            "last_id": page[-1].id if page else None,
            "has_more": len(entries) > limit,
        }
    )
