"""`/console/audit`: every operator action (what, on what, when, from which address, through
which entrypoint), newest first, filtered by action; the rows the use cases write."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from vidrelay.console.listing import PAGE_SIZE, page_url
from vidrelay.console.operator import Operator
from vidrelay.console.pages import PageRoute, context_of, render
from vidrelay.store import audit

router = APIRouter(prefix="/console", route_class=PageRoute, include_in_schema=False)


@router.get("/audit")
async def audit_page(request: Request, session: Operator) -> Response:
    action = request.query_params.get("action", "").strip()[:60]
    before_text = request.query_params.get("before", "")
    before = int(before_text) if before_text.isdigit() and len(before_text) < 11 else None
    async with context_of(request).db.read() as conn:
        entries = await audit.list_entries(
            conn, limit=PAGE_SIZE + 1, before_id=before, action=action or None
        )
    filters = {"action": action}
    page = entries[:PAGE_SIZE]
    values = {
        "action": action,
        "entries": page,
        "next_url": (
            page_url("/console/audit", filters, before=str(page[-1].id))
            if len(entries) > PAGE_SIZE
            else None
        ),
        "first_url": page_url("/console/audit", filters) if before is not None else None,
    }
    return render(request, "operator/audit.html", values, session=session)
