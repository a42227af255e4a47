"""A short-lived, in-process cache of finished videos' status bodies, for the poll hot path.

Clients poll `GET /v1/videos/{id}` far more often than anything else, and a finished job's body
never changes. Caching the rendered bytes per (key, video, vocabulary, public root) lets a
repeated poll skip authentication and both database reads. The price is bounded staleness: a
key revoked or a video deleted by another process (the CLI, another replica) can still be read
here for up to `ttl_s`. Deletes through this process drop their entries at once. Unfinished
jobs and every request that spends money always go to the database.
"""

from __future__ import annotations

import time
from collections import OrderedDict

CacheKey = tuple[str, str, str, str]  # key hash, video id, status style, public root


class StatusCache:
    def __init__(self, ttl_s: float, max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self._max_entries = max_entries
        self._entries: OrderedDict[CacheKey, tuple[float, bytes]] = OrderedDict()

    def get(self, key: CacheKey) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, body = entry
        if expires < time.monotonic():
            del self._entries[key]
            return None
        return body

    def put(self, key: CacheKey, body: bytes) -> None:
        if self.ttl_s <= 0:
            return
        self._entries[key] = (time.monotonic() + self.ttl_s, body)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)

    def forget_video(self, video_id: str) -> None:
        for key in [key for key in self._entries if key[1] == video_id]:
            del self._entries[key]
