"""Where the circuit breakers live, so that every process of an instance sees the same ones.

A breaker one worker trips keeps every worker off that channel or key, and an operator's reset
on any process clears it for all. Two implementations behind one `BreakerStore`, chosen at start
like the rate limiter's storage: the database (the `breakers` table) by default, Redis (one hash)
when `VIDRELAY_REDIS_URL` is set. Either way a change is read-modify-write done atomically
(a row lock, or a Redis `WATCH` transaction), so failures counted by two workers at once add up;
reads are whole snapshots, which the engine caches (engine/health.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Protocol

import coredis
from coredis.exceptions import WatchError
from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from vidrelay.domain.circuit import BreakerRef, BreakerState
from vidrelay.settings import Settings
from vidrelay.store.database import Database
from vidrelay.store.tables import breakers

BreakerChange = Callable[[BreakerState], BreakerState]


class BreakerStore(Protocol):
    """The breakers that are not clear; a clear one is simply absent."""

    async def load(self) -> dict[BreakerRef, BreakerState]:
        """Every breaker with something to remember."""
        ...

    async def change(self, ref: BreakerRef, change: BreakerChange) -> BreakerState:
        """Apply `change` to the breaker's current state atomically (it may be called more than
        once, so it must be pure); returns the state stored."""
        ...

    async def clear(self, channel: str) -> None:
        """Forget the channel's breaker and its keys' (a probe passed, an operator vouched)."""
        ...

    async def close(self) -> None: ...


def open_breaker_store(settings: Settings, db: Database) -> BreakerStore:
    if settings.redis_url:
        return RedisBreakerStore(settings.redis_url)
    return DatabaseBreakerStore(db)


class DatabaseBreakerStore:
    """PostgreSQL locks the breaker's row for the change; SQLite's writers are serialised."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def load(self) -> dict[BreakerRef, BreakerState]:
        async with self._db.read() as conn:
            rows = await conn.execute(select(breakers))
            return {
                BreakerRef(row.channel, row.key_ref): BreakerState(
                    row.consecutive_failures, row.trips_in_a_row, row.open_until, row.last_error
                )
                for row in rows
            }

    async def change(self, ref: BreakerRef, change: BreakerChange) -> BreakerState:
        async with self._db.write() as conn:
            await _insert_clear(conn, ref)  # a row to lock, even for a breaker seen first now
            row = (await conn.execute(select(breakers).where(*_where(ref)).with_for_update())).one()
            state = change(
                BreakerState(
                    row.consecutive_failures, row.trips_in_a_row, row.open_until, row.last_error
                )
            )
            if state.is_clear:
                await conn.execute(delete(breakers).where(*_where(ref)))
            else:
                await conn.execute(update(breakers).where(*_where(ref)).values(**_columns(state)))
        return state

    async def clear(self, channel: str) -> None:
        async with self._db.write() as conn:
            await conn.execute(delete(breakers).where(breakers.c.channel == channel))

    async def close(self) -> None:
        return None


def _where(ref: BreakerRef) -> tuple[ColumnElement[bool], ...]:
    return (breakers.c.channel == ref.channel, breakers.c.key_ref == ref.key)


def _columns(state: BreakerState) -> dict[str, object]:
    return {
        "consecutive_failures": state.consecutive_failures,
        "trips_in_a_row": state.trips_in_a_row,
        "open_until": state.open_until,
        "last_error": state.last_error,
        "updated_at": int(time.time()),
    }


async def _insert_clear(conn: AsyncConnection, ref: BreakerRef) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    await conn.execute(
        dialect.insert(breakers)
        .values(channel=ref.channel, key_ref=ref.key, **_columns(BreakerState()))
        .on_conflict_do_nothing()
    )


class RedisBreakerStore:
    """One hash, a field per breaker (`channel` NUL `key ref`) holding its state as JSON; a
    change is a `WATCH`/`MULTI` transaction on the hash, retried when another process wrote
    to it meanwhile (breakers change on failures only: contention is rare)."""

    def __init__(self, url: str, namespace: str = "vidrelay") -> None:
        """`namespace` prefixes the hash's name (tests share one Redis)."""
        self._redis: coredis.Redis[str] = coredis.Redis.from_url(url, decode_responses=True)
        self._hash = f"{namespace}:breakers"

    async def load(self) -> dict[BreakerRef, BreakerState]:
        fields = await self._redis.hgetall(self._hash)
        return {_ref(field): _state(value) for field, value in fields.items()}

    async def change(self, ref: BreakerRef, change: BreakerChange) -> BreakerState:
        field = _field(ref)
        while True:
            try:
                async with await self._redis.pipeline(transaction=True) as pipe:
                    await pipe.watch(self._hash)
                    current = await pipe.hget(self._hash, field)
                    state = change(_state(current) if current else BreakerState())
                    pipe.multi()
                    if state.is_clear:
                        pipe.hdel(self._hash, [field])
                    else:
                        pipe.hset(self._hash, {field: _json(state)})
                    await pipe.execute()
                return state
            except WatchError:
                continue

    async def clear(self, channel: str) -> None:
        fields: list[str | bytes] = [
            field for field in await self._redis.hkeys(self._hash) if _ref(field).channel == channel
        ]
        if fields:
            await self._redis.hdel(self._hash, fields)

    async def close(self) -> None:
        self._redis.connection_pool.disconnect()


def _field(ref: BreakerRef) -> str:
    return f"{ref.channel}\0{ref.key}"


def _ref(field: str) -> BreakerRef:
    channel, _, key = field.partition("\0")
    return BreakerRef(channel, key)


def _json(state: BreakerState) -> str:
    return json.dumps(
        [state.consecutive_failures, state.trips_in_a_row, state.open_until, state.last_error]
    )


def _state(value: str) -> BreakerState:
    failures, trips, open_until, last_error = json.loads(value)
    return BreakerState(int(failures), int(trips), float(open_until), last_error)
