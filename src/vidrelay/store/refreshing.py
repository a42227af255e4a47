"""A value read from the database and kept in memory for a while: what the api and the engine
share of the operator's tables (channels, the catalog), so the hot paths never query for them.

A change made elsewhere (the CLI, another replica) is seen within `refresh_s`; one made by this
process is seen at once (`invalidate`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.store.database import Database

T = TypeVar("T")


class RefreshingView(Generic[T]):
    def __init__(
        self,
        db: Database,
        load: Callable[[AsyncConnection], Awaitable[T]],
        initial: T,
        refresh_s: float = 2.0,
    ) -> None:
        self._db = db
        self._load = load
        self._refresh_s = refresh_s
        self._value = initial
        self._loaded_at = float("-inf")
        self._generation = 0
        self._lock = asyncio.Lock()

    async def current(self) -> T:
        if time.monotonic() - self._loaded_at < self._refresh_s:
            return self._value
        async with self._lock:
            if time.monotonic() - self._loaded_at >= self._refresh_s:
                generation = self._generation
                async with self._db.read() as conn:
                    self._value = await self._load(conn)
                if generation == self._generation:  # else: changed while reading; read again
                    self._loaded_at = time.monotonic()
        return self._value

    def invalidate(self) -> None:
        self._generation += 1
        self._loaded_at = float("-inf")
