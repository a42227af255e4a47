"""The portal's keys: the tenant's own (hints only), a new one (shown once), revoking one.

A key made here may order only what the signed-in key may: a tenant handed a key limited to
some models cannot widen it by making another.
"""

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
from vidrelay.domain.errors import VidrelayError
from vidrelay.domain.keys import KeySpec
from vidrelay.services import keys as key_service
from vidrelay.store import accounts

router = APIRouter(prefix="/portal", route_class=PageRoute, include_in_schema=False)


@router.get("/keys")
async def keys(request: Request, session: Tenant) -> Response:
    return await _keys_page(request, session)


async def _keys_page(
    request: Request,
    session: Session,
    *,
    issued: str | None = None,
    errors: dict[str, str] | None = None,
    name: str = "",
    status_code: int = 200,
) -> Response:
    """A tenant's keys are listed whole: they are the handful it made for itself."""
    assert session.tenant_id is not None
    async with context_of(request).db.read() as conn:
        listed = await accounts.list_keys(conn, session.tenant_id)
    return render(
        request,
        "portal/keys.html",
        {
            "keys": sorted(listed, key=lambda key: (-key.created_at, key.id)),
            "issued": issued,
            "errors": errors or {},
            "name": name,
            "signed_in_key": session.subject,
        },
        session=session,
        status_code=status_code,
    )


@router.post("/keys")
async def create_key(request: Request, session: Tenant) -> Response:
    """The page answers with the new key itself, once: it is stored only as a hash."""
    form = await checked_form(request, session)
    name = str(form.get("name") or "").strip()
    db = context_of(request).db
    async with db.read() as conn:
        signed_in = await accounts.principal_of_key(conn, session.subject)
        own_key = await accounts.find_key(conn, session.subject)
    if signed_in is None or own_key is None:
        raise not_found("key")  # revoked a moment ago: the next page signs out
    try:
        issued = await key_service.create_key(
            db,
            own_key.tenant_name,
            KeySpec(name=name or None, models=signed_in.key_models),
            actor=tenant_actor(request, session),
        )
    except VidrelayError as error:
        return await _keys_page(
            request, session, errors=field_errors(error), name=name, status_code=400
        )
    return await _keys_page(request, session, issued=issued.key)


@router.post("/keys/{key_id}/revoke")
async def revoke_key(request: Request, session: Tenant, key_id: str) -> Response:
    await checked_form(request, session)
    assert session.tenant_id is not None
    db = context_of(request).db
    async with db.read() as conn:
        owned = await accounts.tenant_key(conn, session.tenant_id, key_id)
    if owned is None:
        raise not_found("key")  # another tenant's key is not there to revoke
    await key_service.revoke_key(db, owned.id, actor=tenant_actor(request, session))
    return redirect("/portal/keys")
