"""What every page of both web apps shares: templates, security headers, error pages, sign-in
checks and the CSRF check of every form.

Every page route is a `PageRoute`: a domain error becomes an HTML page with its status (a
form's own errors are shown beside its fields by the page itself), a request without a valid
session is sent to the sign-in page, and every answer carries the headers that keep signed-in
pages out of caches and frames and forbid any script but our own files.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from vidrelay.api.context import AppContext
from vidrelay.console.sessions import CSRF_FIELD, Session, SessionCookies, WebApp, tokens_match
from vidrelay.domain.errors import NotFound, PermissionDenied, VidrelayError
from vidrelay.domain.pricing import micros_to_usd

SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "media-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
    "x-frame-options": "DENY",
    "cache-control": "no-store",
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
}


def _when(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _usd(micros: int | None) -> str:
    if micros is None:
        return "—"
    return f"${micros_to_usd(micros):,.6f}".rstrip("0").rstrip(".").replace("$-", "-$")


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("vidrelay.console", "templates"),
        autoescape=True,  # every user-given string is escaped unless a template says otherwise
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["usd"] = _usd
    env.filters["dollars"] = lambda value: f"{Decimal(value):,.2f}"
    return env


templates = Jinja2Templates(env=_environment())


class SignInRequired(Exception):
    """No valid session: the page answers with a redirect to its app's sign-in form."""

    def __init__(self, app: WebApp) -> None:
        super().__init__(app)
        self.app = app


class PageRoute(APIRoute):
    """A page: HTML errors, sign-in redirects, and the security headers on every answer."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired as missing:
                response = RedirectResponse(f"/{missing.app}/sign-in", status_code=303)
            except VidrelayError as error:
                response = error_page(request, error)
            response.headers.update(SECURITY_HEADERS)
            return response

        return page


def context_of(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


def cookies_of(request: Request) -> SessionCookies:
    context = context_of(request)
    settings = context.settings
    return SessionCookies(
        context.signer.derived_key("web-session"),
        settings.console_session_s,
        public_https=(settings.public_url or "").startswith("https://"),
    )


def render(
    request: Request,
    template: str,
    values: Mapping[str, Any] | None = None,
    *,
    session: Session | None = None,
    status_code: int = 200,
) -> Response:
    """A page; `csrf` is the session's token, for the forms the page holds."""
    return templates.TemplateResponse(
        request,
        template,
        {"session": session, "csrf": session.csrf if session else "", **(values or {})},
        status_code=status_code,
    )


def error_page(request: Request, error: VidrelayError) -> Response:
    response = render(
        request,
        "error.html",
        {"status": error.status_code, "message": error.message, "app": _app_of(request)},
        status_code=error.status_code,
    )
    response.headers.update(error.response_headers())  # e.g. Retry-After
    return response


def _app_of(request: Request) -> str:
    return "portal" if request.url.path.startswith("/portal") else "console"


def redirect(url: str) -> RedirectResponse:
    """After a form: 303, so reloading the next page does not post the form again."""
    return RedirectResponse(url, status_code=303)


async def checked_form(request: Request, session: Session) -> FormData:
    """The posted form, once it carries the session's CSRF token and comes from this site."""
    same_origin(request)
    form = await request.form()
    given = form.get(CSRF_FIELD)
    if not isinstance(given, str) or not tokens_match(session.csrf, given):
        raise PermissionDenied(
            "This form has expired or did not come from this site; reload the page and try again.",
            code="csrf_failed",
        )
    return form


def same_origin(request: Request) -> None:
    """Refuse a POST a browser says came from another site (a second line behind the token
    and SameSite cookies)."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser, or one that sends none: the token decides
        return
    if urlsplit(origin).netloc != request.headers.get("host", ""):
        raise PermissionDenied("This form was posted from another site.", code="csrf_failed")


def field_errors(error: VidrelayError) -> dict[str, str]:
    """A use case's refusal, keyed by the form field it names (`""`: the whole form)."""
    return {error.param or "": error.message}


def not_found(what: str) -> NotFound:
    """The same answer for what does not exist and what belongs to someone else."""
    return NotFound(f"No {what} here.")
