"""`/console/webhooks`: every tenant's webhook deliveries by status, one delivery's attempt
log, and its replay (the admin API's use case: from the start of its schedule, same
webhook-id)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from vidrelay.console.listing import PAGE_SIZE, page_url
from vidrelay.console.operator import Operator, console_actor
from vidrelay.console.pages import (
    PageRoute,
    checked_form,
    context_of,
    not_found,
    redirect,
    render,
)
from vidrelay.services import webhooks as webhook_service
from vidrelay.store import console_reads

router = APIRouter(prefix="/console", route_class=PageRoute, include_in_schema=False)

STATUSES = ("pending", "delivered", "failed")


def _cursor(text: str) -> tuple[int, str] | None:
    """`before` as the list writes it: `created_at:id` of the previous page's last row."""
    created_at, _, delivery_id = text.partition(":")
    if not created_at.isdigit() or len(created_at) > 12 or not delivery_id:
        return None
    return int(created_at), delivery_id


@router.get("/webhooks")
async def deliveries_page(request: Request, session: Operator) -> Response:
    status = request.query_params.get("status", "")
    status = status if status in STATUSES else ""
    before = _cursor(request.query_params.get("before", ""))
    async with context_of(request).db.read() as conn:
        deliveries, more = await console_reads.list_deliveries(
            conn, status=status or None, before=before, limit=PAGE_SIZE
        )
    filters = {"status": status}
    next_url = None
    if more:
        last = deliveries[-1]
        next_url = page_url("/console/webhooks", filters, before=f"{last.created_at}:{last.id}")
    values = {
        "status": status,
        "statuses": STATUSES,
        "deliveries": deliveries,
        "next_url": next_url,
        "first_url": page_url("/console/webhooks", filters) if before else None,
    }
    return render(request, "operator/webhooks.html", values, session=session)


@router.get("/webhooks/{delivery_id}")
async def delivery_page(request: Request, delivery_id: str, session: Operator) -> Response:
    async with context_of(request).db.read() as conn:
        found = await console_reads.find_delivery(conn, delivery_id)
    if found is None:
        raise not_found("webhook delivery")
    delivery, attempts = found
    values = {"delivery": delivery, "attempts": attempts}
    return render(request, "operator/delivery.html", values, session=session)


@router.post("/webhooks/{delivery_id}/replay")
async def replay(request: Request, delivery_id: str, session: Operator) -> Response:
    await checked_form(request, session)
    context = context_of(request)
    await webhook_service.replay_delivery(
        context.db, delivery_id, actor=console_actor(request), wakeups=context.wakeups
    )
    return redirect(f"/console/webhooks/{delivery_id}")
