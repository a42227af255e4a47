"""Kling's credential: an access key and a secret key, sent as a short-lived signed token.

A channel key is written `ACCESS_KEY:SECRET_KEY`. Each request carries `Authorization: Bearer
<JWT>`, HS256-signed with the secret key, header `{"alg": "HS256", "typ": "JWT"}`, claims `iss`
= the access key, `exp` = now + 30 min, `nbf` = now - 5 s (commonInfo, "API Authentication").
Signing is cheap but not free, and a poll loop asks for a token per request: a token is reused
until `REFRESH_BEFORE_S` before it expires.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt

from vidrelay.upstreams.base import FailureKind, UpstreamError
from vidrelay.upstreams.messages import key_pair

TOKEN_LIFETIME_S = 1800
NOT_BEFORE_SKEW_S = 5
REFRESH_BEFORE_S = 300
_MAX_CACHED = 1024


def not_a_key_pair() -> UpstreamError:
    return UpstreamError(
        "The channel's key is not a Kling key pair: write it ACCESS_KEY:SECRET_KEY.",
        code="upstream_auth",
        kind=FailureKind.AUTH,
    )


def sign_token(access_key: str, secret_key: str, now: float) -> str:
    issued = int(now)
    claims = {
        "iss": access_key,
        "exp": issued + TOKEN_LIFETIME_S,
        "nbf": issued - NOT_BEFORE_SKEW_S,
    }
    return jwt.encode(claims, secret_key, algorithm="HS256", headers={"typ": "JWT"})


class KlingTokens:
    """Signed tokens per credential, reused while they have `REFRESH_BEFORE_S` left.

    `clock` is replaceable so tests can move time. A plain key (no `:`) raises an AUTH
    `UpstreamError`: the engine then tries another key and the breaker names the problem.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tokens: dict[str, tuple[str, float]] = {}

    def token(self, key: str) -> str:
        now = self._clock()
        cached = self._tokens.get(key)
        if cached is not None and cached[1] - now > REFRESH_BEFORE_S:
            return cached[0]
        pair = key_pair(key)
        if pair is None:
            raise not_a_key_pair()
        token = sign_token(*pair, now)
        if len(self._tokens) >= _MAX_CACHED:  # keys removed from channels: start afresh
            self._tokens.clear()
        self._tokens[key] = (token, int(now) + TOKEN_LIFETIME_S)
        return token

    def headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(key)}"}
