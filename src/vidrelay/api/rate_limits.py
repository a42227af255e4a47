"""Requests-per-minute limits per key and per tenant, with the `limits` library.

Redis storage when `VIDRELAY_REDIS_URL` is set, so every replica shares one count (the
scale-out shape); in-process memory otherwise. The answer carries the headers the official SDKs
read: `x-ratelimit-limit-requests`, `x-ratelimit-remaining-requests`,
`x-ratelimit-reset-requests`, and `retry-after` on a 429. Nothing is limited unless the
operator set a limit on the key or its tenant.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from vidrelay.domain.errors import RateLimited
from vidrelay.store.accounts import Principal

_NAMESPACE = "vidrelay-rpm"


class RequestRateLimiter:
    def __init__(self, redis_url: str | None) -> None:
        storage: Storage = MemoryStorage()
        if redis_url:
            shared = storage_from_string(f"async+{redis_url}")
            assert isinstance(shared, Storage)
            storage = shared
        self._limiter = MovingWindowRateLimiter(storage)

    async def attempt(self, identity: str, per_minute: int) -> int | None:
        """Count one attempt of `identity` (e.g. a web sign-in from one address); None while
        under `per_minute`, else the seconds until the next attempt is allowed."""
        item = RateLimitItemPerMinute(per_minute)
        if await self._limiter.hit(item, _NAMESPACE, identity):
            return None
        stats = await self._limiter.get_window_stats(item, _NAMESPACE, identity)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def hit(self, principal: Principal) -> dict[str, str]:
        """Count one request against the caller's limits; raise `RateLimited` past one.

        Returns the rate-limit headers of the tightest limit that applies (empty if none).
        """
        headers: dict[str, str] = {}
        tightest: int | None = None
        scopes = (
            (f"key:{principal.key_id}", principal.key_limits.rpm, "this key"),
            (f"tenant:{principal.tenant_id}", principal.tenant_limits.rpm, "your account"),
        )
        for identity, rpm, whom in scopes:
            if rpm is None:
                continue
            item = RateLimitItemPerMinute(rpm)
            allowed = await self._limiter.hit(item, _NAMESPACE, identity)
            stats = await self._limiter.get_window_stats(item, _NAMESPACE, identity)
            reset_s = max(1, math.ceil(stats.reset_time - time.time()))
            scope_headers = {
                "x-ratelimit-limit-requests": str(rpm),
                "x-ratelimit-remaining-requests": str(stats.remaining),
                "x-ratelimit-reset-requests": f"{reset_s}s",
            }
            if not allowed:
                raise RateLimited(
                    f"Rate limit reached: {whom} may make {rpm} video requests per minute. "
                    f"Try again in {reset_s} s.",
                    retry_after_s=reset_s,
                    headers=scope_headers,
                )
            if tightest is None or stats.remaining < tightest:
                tightest, headers = stats.remaining, scope_headers
        return headers
