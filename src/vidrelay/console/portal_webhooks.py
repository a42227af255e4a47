"""The portal's webhooks: the tenant's endpoints (add, remove) and its signing secret (show,
rotate), through the use cases `/v1/webhooks` and `vidrelay webhooks` call."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from vidrelay.console.pages import (
    PageRoute,
    checked_form,
    context_of,
    field_errors,
    not_found,
    redirect,
    render,
)
from vidrelay.console.portal import Tenant, tenant_actor
from vidrelay.console.sessions import Session
from vidrelay.domain.errors import NotFound, VidrelayError
from vidrelay.services import webhooks as webhook_service
from vidrelay.store import webhooks as webhook_store

router = APIRouter(prefix="/portal", route_class=PageRoute, include_in_schema=False)


@router.get("/webhooks")
async def webhooks(request: Request, session: Tenant, reveal: bool = False) -> Response:
    """`reveal=true` shows the signing secret (made on first use, as `/v1/webhooks/secret`)."""
    return await _webhooks_page(request, session, reveal=reveal)


async def _webhooks_page(
    request: Request,
    session: Session,
    *,
    reveal: bool = False,
    errors: dict[str, str] | None = None,
    url: str = "",
    checked: tuple[str, ...] = (),
    status_code: int = 200,
) -> Response:
    """A tenant's endpoints are listed whole: the few it registered."""
    assert session.tenant_id is not None
    db = context_of(request).db
    secret = None
    if reveal:
        async with db.write() as conn:
            secret = await webhook_store.webhook_secret(conn, session.tenant_id)
    async with db.read() as conn:
        endpoints = await webhook_store.list_endpoints(conn, session.tenant_id)
    return render(
        request,
        "portal/webhooks.html",
        {
            "endpoints": endpoints,
            "secret": secret,
            "event_types": webhook_service.EVENT_TYPES,
            "errors": errors or {},
            "url": url,
            "checked": checked,
        },
        session=session,
        status_code=status_code,
    )


@router.post("/webhooks")
async def add_endpoint(request: Request, session: Tenant) -> Response:
    """Every event type when none is ticked."""
    form = await checked_form(request, session)
    url = str(form.get("url") or "").strip()
    checked = tuple(str(value) for value in form.getlist("event_types"))
    context = context_of(request)
    try:
        await webhook_service.add_endpoint(
            context.db,
            url,
            checked,
            actor=tenant_actor(request, session),
            allowlist=context.settings.outbound_allowlist_entries,
        )
    except VidrelayError as error:
        return await _webhooks_page(
            request, session, errors=field_errors(error), url=url, checked=checked,
            status_code=400,
        )  # fmt: skip
    return redirect("/portal/webhooks")


@router.post("/webhooks/{endpoint_id}/remove")
async def remove_endpoint(request: Request, session: Tenant, endpoint_id: str) -> Response:
    await checked_form(request, session)
    actor = tenant_actor(request, session)
    try:
        await webhook_service.remove_endpoint(context_of(request).db, endpoint_id, actor=actor)
    except NotFound:
        raise not_found("webhook endpoint") from None
    return redirect("/portal/webhooks")


@router.post("/webhooks/secret/rotate")
async def rotate_secret(request: Request, session: Tenant) -> Response:
    """A new secret at once, shown; events from now on are signed with it."""
    await checked_form(request, session)
    await webhook_service.rotate_secret(
        context_of(request).db, actor=tenant_actor(request, session)
    )
    return redirect("/portal/webhooks?reveal=true#secret")
