"""Channel and key health: which key the next call uses, and when a channel is given up on.

The breakers live in a shared store (the database, or Redis), so each behaviour holds on every
store, and two `ChannelHealth`s on one store stand for two worker processes.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from tests.conftest import create_postgres_database, redis_url
from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.channels import Channel, ChannelProtocol
from vidrelay.domain.circuit import BreakerRef, BreakerState
from vidrelay.engine.health import ChannelHealth, key_ref
from vidrelay.store.breakers import (
    BreakerChange,
    BreakerStore,
    DatabaseBreakerStore,
    RedisBreakerStore,
)
from vidrelay.store.database import Database
from vidrelay.upstreams.base import FailureKind, UpstreamError

CHANNEL = Channel(
    name="vendor",
    protocol=ChannelProtocol.OPENAI,
    route_class=RouteClass.OFFICIAL,
    models=("sora-2",),
    base_url="http://upstream.test",
    keys=("sk-up-1", "sk-up-2", "sk-up-3"),
)


@pytest_asyncio.fixture(params=["sqlite", "postgresql", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BreakerStore]:
    if request.param == "redis":
        shared: BreakerStore = RedisBreakerStore(redis_url(), f"test-{secrets.token_hex(6)}")
        try:
            yield shared
        finally:
            await shared.clear(CHANNEL.name)
            await shared.close()
        return
    drop = None
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'vidrelay.db'}"
    else:
        url, drop = await create_postgres_database()
    db = Database(url)
    await db.upgrade()
    try:
        yield DatabaseBreakerStore(db)
    finally:
        await db.dispose()
        if drop is not None:
            await drop()


def health_on(store: BreakerStore, **settings: Any) -> ChannelHealth:
    """A process's view of the shared breakers; it reads them again on every refresh."""
    return ChannelHealth(store, refresh_s=0.0, **settings)


def error(kind: FailureKind, retry_after_s: float | None = None) -> UpstreamError:
    return UpstreamError("boom", kind=kind, retry_after_s=retry_after_s)


async def test_keys_take_turns(store: BreakerStore) -> None:
    health = health_on(store)
    assert [health.pick_key(CHANNEL) for _ in range(4)] == [
        "sk-up-1",
        "sk-up-2",
        "sk-up-3",
        "sk-up-1",
    ]


async def test_a_refused_key_is_benched_and_the_others_carry_on(store: BreakerStore) -> None:
    health = health_on(store)
    verdict = await health.record_failure(CHANNEL, "sk-up-2", error(FailureKind.AUTH))
    assert verdict.disable_reason is None
    picked = {health.pick_key(CHANNEL) for _ in range(6)}
    assert picked == {"sk-up-1", "sk-up-3"}


async def test_a_channel_whose_every_key_is_refused_is_given_up_with_a_reason(
    store: BreakerStore,
) -> None:
    health = health_on(store)
    for key in CHANNEL.keys[:-1]:
        verdict = await health.record_failure(CHANNEL, key, error(FailureKind.AUTH))
        assert verdict.disable_reason is None
    verdict = await health.record_failure(CHANNEL, "sk-up-3", error(FailureKind.AUTH))
    assert verdict.disable_reason and "every key" in verdict.disable_reason
    assert health.pick_key(CHANNEL) is None and not health.usable(CHANNEL)


async def test_a_rate_limited_key_rests_for_its_retry_after_only(store: BreakerStore) -> None:
    health = health_on(store)
    await health.record_failure(CHANNEL, "sk-up-1", error(FailureKind.RATE_LIMITED, 1000))
    assert "sk-up-1" not in {health.pick_key(CHANNEL) for _ in range(6)}
    assert health.usable(CHANNEL)


async def test_transport_failures_open_the_circuit_and_repeated_trips_give_the_channel_up(
    store: BreakerStore,
) -> None:
    health = health_on(store, failure_threshold=2, base_cooldown_s=0.0, disable_after_trips=2)
    outage = error(FailureKind.UNAVAILABLE)
    assert (await health.record_failure(CHANNEL, "sk-up-1", outage)).disable_reason is None
    assert (await health.record_failure(CHANNEL, "sk-up-1", outage)).disable_reason is None
    verdict = await health.record_failure(CHANNEL, "sk-up-1", outage)  # trip 2
    assert verdict.disable_reason and "failures in a row" in verdict.disable_reason


async def test_a_rejection_proves_the_channel_alive(store: BreakerStore) -> None:
    health = health_on(store, failure_threshold=2)
    await health.record_failure(CHANNEL, "sk-up-1", error(FailureKind.UNAVAILABLE))
    await health.record_failure(CHANNEL, "sk-up-1", error(FailureKind.REJECTED))
    await health.record_failure(CHANNEL, "sk-up-1", error(FailureKind.UNAVAILABLE))
    assert health.usable(CHANNEL)


async def test_a_reset_forgets_every_failure_of_the_channel(store: BreakerStore) -> None:
    health = health_on(store)
    for key in CHANNEL.keys:
        await health.record_failure(CHANNEL, key, error(FailureKind.AUTH))
    await health.reset("vendor")
    assert health.usable(CHANNEL)


async def test_a_breaker_one_process_trips_holds_in_another_and_a_reset_reaches_it(
    store: BreakerStore,
) -> None:
    first, second = health_on(store, failure_threshold=2), health_on(store, failure_threshold=2)
    for _ in range(2):
        await first.record_failure(CHANNEL, "sk-up-1", error(FailureKind.UNAVAILABLE))
    await first.record_failure(CHANNEL, "sk-up-2", error(FailureKind.RATE_LIMITED, 1000))
    await second.refresh()
    assert not second.usable(CHANNEL)
    assert "sk-up-2" not in {second.pick_key(CHANNEL) for _ in range(6)}
    await health_on(store).reset(CHANNEL.name)  # a third process: the admin's
    await second.refresh()
    assert second.usable(CHANNEL)


async def test_failures_two_processes_count_at_once_add_up(store: BreakerStore) -> None:
    first, second = health_on(store, failure_threshold=6), health_on(store, failure_threshold=6)
    outage = error(FailureKind.UNAVAILABLE)
    await asyncio.gather(
        *(health.record_failure(CHANNEL, "sk-up-1", outage) for health in [first, second] * 3)
    )
    await first.refresh()
    assert first.channel_open(CHANNEL.name)
    assert (await store.load())[BreakerRef(CHANNEL.name)].consecutive_failures == 6


class CountingStore:
    """A store that counts the changes written through it."""

    def __init__(self, inner: BreakerStore) -> None:
        self.inner = inner
        self.changes = 0

    async def load(self) -> dict[BreakerRef, BreakerState]:
        return await self.inner.load()

    async def change(self, ref: BreakerRef, change: BreakerChange) -> BreakerState:
        self.changes += 1
        return await self.inner.change(ref, change)

    async def clear(self, channel: str) -> None:
        await self.inner.clear(channel)

    async def close(self) -> None:
        await self.inner.close()


async def test_successes_write_only_when_they_close_a_breaker(store: BreakerStore) -> None:
    counting = CountingStore(store)
    health = health_on(counting)
    for _ in range(5):
        await health.record_success(CHANNEL.name, "sk-up-1")
    assert counting.changes == 0
    await health.record_failure(CHANNEL, "sk-up-1", error(FailureKind.UNAVAILABLE))
    await health.record_success(CHANNEL.name, "sk-up-1")  # closes the channel's breaker
    await health.record_success(CHANNEL.name, "sk-up-1")
    assert counting.changes == 2
    assert await store.load() == {}


def test_a_job_remembers_a_digest_of_its_key_never_the_key() -> None:
    assert key_ref("sk-up-1") != key_ref("sk-up-2")
    assert "sk-up" not in key_ref("sk-up-1") and len(key_ref("sk-up-1")) == 16
