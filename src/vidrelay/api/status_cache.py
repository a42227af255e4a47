"""A short-lived, in-process cache of finished videos' status bodies, for the poll hot path.

Clients poll `GET /v1/videos/{id}` far more often than anything else, and a finished job's body
never changes. Caching the rendered bytes per (key, video, vocabulary, public root) lets a
repeated poll skip authentication and both database reads. The price is bounded staleness: a
key revoked or a video deleted by another process (the CLI, another replica) can still be read
here for up to `ttl_s`. Deletes through this process drop their entries at once. Unfinished
jobs and every request that spends money always go to the database.

Its memory is bounded whatever clients send: the key holds validated values only (the caller
checks the vocabulary and the public root before it builds a key), the bytes held never exceed
`max_bytes`, and every access first drops the entries whose time is up, read or not.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

CacheKey = tuple[str, str, str, str]  # key hash, video id, status style, public root

ENTRY_OVERHEAD_BYTES = 256
"""What an entry costs besides its strings and body (tuple, dict slot, float), rounded up."""


def entry_size(key: CacheKey, body: bytes) -> int:
    return ENTRY_OVERHEAD_BYTES + sum(len(part) for part in key) + len(body)


class StatusCache:
    def __init__(
        self, ttl_s: float, max_bytes: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self.bytes_held = 0
        self._clock = clock
        # Insertion order is expiry order: every entry lives `ttl_s`, a put moves it to the end.
        self._entries: OrderedDict[CacheKey, tuple[float, bytes]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> bytes | None:
        self._drop_expired()
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def put(self, key: CacheKey, body: bytes) -> None:
        self._drop_expired()
        size = entry_size(key, body)
        if self.ttl_s <= 0 or size > self.max_bytes:
            return
        self._remove(key)
        self._entries[key] = (self._clock() + self.ttl_s, body)
        self.bytes_held += size
        while self.bytes_held > self.max_bytes:
            self._remove(next(iter(self._entries)))

    def forget_video(self, video_id: str) -> None:
        for key in [key for key in self._entries if key[1] == video_id]:
            self._remove(key)

    def _drop_expired(self) -> None:
        now = self._clock()
        while self._entries:
            oldest = next(iter(self._entries))
            if self._entries[oldest][0] > now:
                return
            self._remove(oldest)

    def _remove(self, key: CacheKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes_held -= entry_size(key, entry[1])
