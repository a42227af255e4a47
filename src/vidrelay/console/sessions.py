"""Who is signed in to a web app: a signed, expiring cookie, and the CSRF token of its forms.

The cookie carries no secret, only what it stands for (the operator, or a tenant's key id) and
a random CSRF token; it is signed with a key derived from the instance's secret in the database,
so every API process of one instance accepts it. An operator's session also names a
fingerprint of the admin token it was opened with: changing `VIDRELAY_ADMIN_TOKEN` signs every
operator out. A tenant's session is checked against its key on every page, so revoking the key
signs the tenant out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

WebApp = Literal["console", "portal"]
CSRF_FIELD = "csrf_token"
_SIGN_IN_COOKIE = "vidrelay_sign_in"
"""The double-submitted token of a sign-in form, which no session protects yet."""
_ONCE_COOKIE = "vidrelay_once"
"""A value for the next page only (a new key): read and deleted by that page."""
_ONCE_S = 120


@dataclass(frozen=True)
class Session:
    app: WebApp
    subject: str
    """The operator's admin-token fingerprint, or the tenant key's id."""
    tenant_id: str | None
    csrf: str


def admin_token_fingerprint(token: str) -> str:
    return hashlib.sha256(f"vidrelay-console:{token}".encode()).hexdigest()[:32]


class SessionCookies:
    """Issues and reads the session cookies of both web apps."""

    def __init__(self, key: bytes, lifetime_s: int, *, public_https: bool = False) -> None:
        self._serializer = URLSafeTimedSerializer(key, salt="vidrelay-web-session")
        self._sign_in = URLSafeTimedSerializer(key, salt="vidrelay-web-sign-in")
        self._once = URLSafeTimedSerializer(key, salt="vidrelay-web-once")
        self.lifetime_s = lifetime_s
        self._public_https = public_https
        """`VIDRELAY_PUBLIC_URL` is https: a proxy in front ends TLS, whatever uvicorn sees."""

    @staticmethod
    def cookie_name(app: WebApp) -> str:
        return f"vidrelay_{app}"

    def read(self, request: Request, app: WebApp) -> Session | None:
        """The session the request's cookie holds; None when absent, forged or expired."""
        cookie = request.cookies.get(self.cookie_name(app))
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=self.lifetime_s)
        except BadSignature:
            return None
        if not isinstance(data, dict) or data.get("app") != app:
            return None
        subject, tenant_id, csrf = data.get("sub"), data.get("tenant"), data.get("csrf")
        if not isinstance(subject, str) or not isinstance(csrf, str):
            return None
        return Session(app, subject, tenant_id if isinstance(tenant_id, str) else None, csrf)

    def open(
        self,
        request: Request,
        response: Response,
        app: WebApp,
        subject: str,
        tenant_id: str | None = None,
    ) -> None:
        """Sign in: a new session (and a new CSRF token) in the response's cookie."""
        value = self._serializer.dumps(
            {"app": app, "sub": subject, "tenant": tenant_id, "csrf": new_token()}
        )
        response.set_cookie(
            self.cookie_name(app),
            value,
            max_age=self.lifetime_s,
            path=f"/{app}",
            secure=self._secure(request),
            httponly=True,
            samesite="strict",
        )
        response.delete_cookie(_SIGN_IN_COOKIE, path=f"/{app}")

    def close(self, request: Request, response: Response, app: WebApp) -> None:
        response.delete_cookie(
            self.cookie_name(app),
            path=f"/{app}",
            secure=self._secure(request),
            httponly=True,
            samesite="strict",
        )

    def remember_sign_in_token(
        self, request: Request, response: Response, app: WebApp, token: str
    ) -> None:
        """Set the CSRF token of a sign-in form as the cookie its POST must send back."""
        response.set_cookie(
            _SIGN_IN_COOKIE,
            self._sign_in.dumps(token),
            max_age=3600,
            path=f"/{app}",
            secure=self._secure(request),
            httponly=True,
            samesite="strict",
        )

    def hand_over_once(
        self, request: Request, response: Response, session: Session, value: str
    ) -> None:
        """Carry `value` (a key in clear) to the next page of this session only: that page
        takes it and deletes the cookie, so a reload shows it no more. The database never
        holds it; the cookie lives two minutes at most, bound to the session's CSRF token."""
        response.set_cookie(
            _ONCE_COOKIE,
            self._once.dumps({"csrf": session.csrf, "value": value}),
            max_age=_ONCE_S,
            path=f"/{session.app}",
            secure=self._secure(request),
            httponly=True,
            samesite="strict",
        )

    def take_once(self, request: Request, session: Session) -> str | None:
        """What `hand_over_once` left for this session; None when gone, expired or another
        session's. The page that shows it calls `forget_once` on its response."""
        try:
            data = self._once.loads(request.cookies.get(_ONCE_COOKIE, ""), max_age=_ONCE_S)
        except BadSignature:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("value"), str):
            return None
        csrf = data.get("csrf")
        if not isinstance(csrf, str) or not tokens_match(session.csrf, csrf):
            return None
        return str(data["value"])

    def forget_once(self, request: Request, response: Response, app: WebApp) -> None:
        response.delete_cookie(
            _ONCE_COOKIE,
            path=f"/{app}",
            secure=self._secure(request),
            httponly=True,
            samesite="strict",
        )

    def _secure(self, request: Request) -> bool:
        return self._public_https or request.url.scheme == "https"

    def sign_in_token_matches(self, request: Request, given: str) -> bool:
        cookie = request.cookies.get(_SIGN_IN_COOKIE, "")
        try:
            expected = self._sign_in.loads(cookie, max_age=3600)
        except BadSignature:
            return False
        return isinstance(expected, str) and tokens_match(expected, given)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def tokens_match(expected: str, given: str) -> bool:
    """Constant-time; False for a non-ASCII `given` (compare_digest refuses those)."""
    return given.isascii() and hmac.compare_digest(expected, given)
