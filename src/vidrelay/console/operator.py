"""`/console`: the operator's web console, signed in with the admin token.

Off (every page a 404, like `/admin`) while `VIDRELAY_ADMIN_TOKEN` is unset.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import Response

from vidrelay.console.pages import PageRoute, SignInRequired, context_of, cookies_of
from vidrelay.console.sessions import Session, admin_token_fingerprint
from vidrelay.console.sign_in import client_address, sign_in, sign_in_form, sign_out
from vidrelay.domain.audit import Actor, ActorKind
from vidrelay.domain.errors import NotFound

router = APIRouter(prefix="/console", route_class=PageRoute, include_in_schema=False)


def _admin_token(request: Request) -> str:
    token = context_of(request).settings.admin_token
    if not token:
        raise NotFound("Unknown request URL. Check the path and method.")
    return token


async def operator_session(request: Request) -> Session:
    """The signed-in operator; a redirect to the sign-in form otherwise."""
    token = _admin_token(request)
    session = cookies_of(request).read(request, "console")
    if session is None or not hmac.compare_digest(session.subject, admin_token_fingerprint(token)):
        raise SignInRequired("console")
    return session


Operator = Annotated[Session, Depends(operator_session)]


def console_actor(request: Request) -> Actor:
    """Who a console action is recorded as in the audit log: the console, from this address."""
    return Actor(ActorKind.CONSOLE, address=client_address(request))


@router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    _admin_token(request)
    return sign_in_form(request, "console")


@router.post("/sign-in")
async def sign_in_post(request: Request) -> Response:
    token = _admin_token(request)

    async def check(given: str) -> tuple[str, str | None] | None:
        if hmac.compare_digest(given.encode(), token.encode()):
            return admin_token_fingerprint(token), None
        return None

    return await sign_in(request, "console", check)


@router.post("/sign-out")
async def sign_out_post(request: Request, session: Operator) -> Response:
    return await sign_out(request, session)
