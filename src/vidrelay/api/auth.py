"""Bearer-key authentication. Keys are looked up by hash; the key itself is never logged."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import Request

from vidrelay.api.context import AppContext, get_context
from vidrelay.domain.errors import AuthenticationFailed, InvalidRequest
from vidrelay.domain.jobs import StatusStyle
from vidrelay.services.keys import authenticate
from vidrelay.store.accounts import Principal


async def require_principal(
    request: Request, context: Annotated[AppContext, Depends(get_context)]
) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        raise AuthenticationFailed(
            "You didn't provide an API key. Send it as 'Authorization: Bearer sk-…'.",
            code="missing_api_key",
        )
    return await authenticate(context.db, key)


def sent_by_official_sdk(request: Request) -> bool:
    """The official SDKs send `X-Stainless-*` headers on every request."""
    return any(name.startswith("x-stainless-") for name in request.headers)


def asked_status_style(request: Request) -> StatusStyle | None:
    """`?status_style=` if given (empty counts as absent); any other value is a 400."""
    if not request.scope["query_string"]:
        return None  # the common poll: no query to parse
    asked = request.query_params.get("status_style")
    if not asked:
        return None
    try:
        return StatusStyle(asked)
    except ValueError:
        allowed = ", ".join(style.value for style in StatusStyle)
        raise InvalidRequest(
            f"status_style {asked[:40]!r} is not supported; allowed values: {allowed}.",
            param="status_style",
        ) from None


def status_style(request: Request, principal: Principal | None) -> StatusStyle:
    """The request's choice, then the key's setting, then the official SDKs' headers."""
    asked = asked_status_style(request)
    if asked is not None:
        return asked
    if principal is not None and principal.status_style is not None:
        return principal.status_style
    if sent_by_official_sdk(request):
        return StatusStyle.OPENAI
    return StatusStyle.RELAY


Authenticated = Annotated[Principal, Depends(require_principal)]
Context = Annotated[AppContext, Depends(get_context)]
