"""Signing in and out of either web app: a form, a rate limit per client address, a session.

The sign-in form is protected like every other (a double-submitted token: a cookie and a
field), so another site cannot sign a browser in to an account of its choosing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from vidrelay.console.pages import checked_form, cookies_of, redirect, render, same_origin
from vidrelay.console.sessions import CSRF_FIELD, Session, WebApp, new_token
from vidrelay.domain.errors import RateLimited

Credentials = Callable[[str], Awaitable[tuple[str, str | None] | None]]
"""Checks what was typed; (subject, tenant id) of the session to open, None when wrong."""

LABELS: dict[WebApp, str] = {"console": "Admin token", "portal": "API key"}
TITLES: dict[WebApp, str] = {"console": "vidrelay console", "portal": "vidrelay portal"}


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def sign_in_form(
    request: Request, app: WebApp, *, error: str | None = None, status_code: int = 200
) -> Response:
    token = new_token()
    response = render(
        request,
        "sign_in.html",
        {"app": app, "label": LABELS[app], "title": TITLES[app], "error": error, "token": token},
        status_code=status_code,
    )
    cookies_of(request).remember_sign_in_token(request, response, app, token)
    return response


async def sign_in(request: Request, app: WebApp, credentials: Credentials) -> Response:
    """Check the form's token, the address's rate and the credential; open a session."""
    same_origin(request)
    context = request.app.state.context
    cookies = cookies_of(request)
    form = await request.form()
    token = form.get(CSRF_FIELD)
    if not isinstance(token, str) or not cookies.sign_in_token_matches(request, token):
        return sign_in_form(
            request, app, error="This form expired; please sign in again.", status_code=403
        )
    wait_s = await context.rate_limiter.attempt(
        f"sign-in:{app}:{client_address(request)}", context.settings.console_sign_in_per_minute
    )
    if wait_s is not None:
        raise RateLimited(
            f"Too many sign-in attempts from this address; try again in {wait_s} s.",
            retry_after_s=wait_s,
        )
    secret = form.get("secret")
    found = await credentials(secret.strip()) if isinstance(secret, str) and secret else None
    if found is None:
        return sign_in_form(
            request, app, error=f"Incorrect {LABELS[app].lower()}.", status_code=401
        )
    response = redirect(f"/{app}")
    cookies.open(request, response, app, found[0], found[1])
    return response


async def sign_out(request: Request, session: Session) -> Response:
    await checked_form(request, session)
    response = redirect(f"/{session.app}/sign-in")
    cookies_of(request).close(request, response, session.app)
    return response
