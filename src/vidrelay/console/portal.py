"""`/portal`: the customer's own pages, signed in with one of the tenant's API keys.

A tenant sees only its own: every query is scoped to the session's tenant, and what belongs to
another tenant is a 404, as in the API. Revoking or expiring the key signs the tenant out.
"""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from vidrelay.console.pages import PageRoute, SignInRequired, context_of, cookies_of
from vidrelay.console.sessions import Session
from vidrelay.console.sign_in import client_address, sign_in, sign_in_form, sign_out
from vidrelay.domain.audit import Actor, ActorKind
from vidrelay.domain.errors import AuthenticationFailed
from vidrelay.services import keys as key_service
from vidrelay.store import accounts

router = APIRouter(prefix="/portal", route_class=PageRoute, include_in_schema=False)


async def tenant_session(request: Request) -> Session:
    """The signed-in tenant, while its key is neither revoked nor expired."""
    session = cookies_of(request).read(request, "portal")
    if session is None or session.tenant_id is None:
        raise SignInRequired("portal")
    async with context_of(request).db.read() as conn:
        key = await accounts.find_key(conn, session.subject)
    if (
        key is None
        or key.revoked_at is not None
        or (key.expires_at is not None and key.expires_at <= time.time())
    ):
        raise SignInRequired("portal")
    return session


Tenant = Annotated[Session, Depends(tenant_session)]


def tenant_actor(request: Request, session: Session) -> Actor:
    """The tenant serving itself, as the audit log records it (as through `/v1`)."""
    return Actor(ActorKind.TENANT, address=client_address(request), tenant_id=session.tenant_id)


@router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    return sign_in_form(request, "portal")


@router.post("/sign-in")
async def sign_in_post(request: Request) -> Response:
    db = context_of(request).db

    async def check(given: str) -> tuple[str, str | None] | None:
        try:
            principal = await key_service.authenticate(db, given)
        except AuthenticationFailed:
            return None
        return principal.key_id, principal.tenant_id

    return await sign_in(request, "portal", check)


@router.post("/sign-out")
async def sign_out_post(request: Request, session: Tenant) -> Response:
    return await sign_out(request, session)
