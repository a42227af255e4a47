"""Two engines on one database behave as one: together they respect a channel's concurrency
limit, a breaker one trips keeps the other off the channel, and an operator's switch made
through an API process reaches a worker.

Each engine has its own `Database` (its own connections, as a separate process would) and its
own breaker store object over the shared backing (the database, or Redis).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from tests.conftest import ADMIN, ADMIN_TOKEN, redis_url
from tests.engine.conftest import Stack, accept, wait_terminal
from tests.engine.test_runner import RejectingUpstream
from tests.fakes.media import tiny_mp4
from vidrelay.api.app import create_app
from vidrelay.domain.catalog import NormalisedRequest, RouteClass
from vidrelay.domain.channels import Channel, ChannelProtocol
from vidrelay.domain.jobs import JobStatus
from vidrelay.engine.channels import ChannelRegistry
from vidrelay.engine.runner import JobRunner
from vidrelay.settings import Settings
from vidrelay.store import channels as channel_store
from vidrelay.store import jobs as job_store
from vidrelay.store.breakers import open_breaker_store
from vidrelay.store.channels import ChannelDirectory
from vidrelay.store.database import Database
from vidrelay.store.tables import jobs as job_table
from vidrelay.upstreams.base import (
    FailureKind,
    UpstreamError,
    UpstreamRequest,
    UpstreamState,
    UpstreamStatus,
)

FAST = {
    "poll_first_s": 0.05,
    "poll_growth": 0.0,
    "poll_steady_s": 0.05,
    "channel_refresh_s": 0.05,
    "circuit_failure_threshold": 2,
    "channel_disable_after_trips": 2,
}

SORA_2_REQUEST = NormalisedRequest(
    model="sora-2", route_class=RouteClass.OFFICIAL, seconds="4", size="720x1280", prompt="x"
)


def vendor(**overrides: Any) -> Channel:
    """A channel of its own per test: tests share one Redis."""
    values: dict[str, Any] = {
        "name": f"vendor-{secrets.token_hex(4)}",
        "protocol": ChannelProtocol.OPENAI,
        "route_class": RouteClass.OFFICIAL,
        "models": ("sora-2",),
        "base_url": "http://upstream.test",
        "keys": ("sk-up-1", "sk-up-2"),
    }
    values.update(overrides)
    return Channel(**values).validate()


async def declare(db: Database, channel: Channel) -> None:
    async with db.write() as conn:
        await channel_store.save_channel(conn, channel)


class SlowUpstream(RejectingUpstream):
    """Runs each job for `run_s`, and remembers the most jobs it ever ran at once. A finished
    job stays known, as on a real upstream: with the engine tests' 1 s leases, a loaded machine
    can hand a job to the other engine, which polls it again."""

    def __init__(self, run_s: float) -> None:
        self.run_s = run_s
        self.ends: dict[str, float] = {}
        self.peak = 0

    async def submit(self, request: UpstreamRequest, key: str) -> str:
        upstream_job_id = f"up_{request.job_id}_{secrets.token_hex(2)}"
        now = time.monotonic()
        self.ends[upstream_job_id] = now + self.run_s
        self.peak = max(self.peak, sum(1 for end in self.ends.values() if end > now))
        return upstream_job_id

    async def poll(self, upstream_job_id: str, key: str) -> UpstreamStatus:
        if time.monotonic() < self.ends[upstream_job_id]:
            return UpstreamStatus(UpstreamState.RUNNING)
        return UpstreamStatus(UpstreamState.COMPLETED)

    async def fetch_content(
        self, upstream_job_id: str, variant: str, destination: Path, key: str
    ) -> bool:
        if variant != "video":
            return False
        destination.write_bytes(tiny_mp4())
        return True


@asynccontextmanager
async def engine(
    stack: Stack,
    settings: Settings,
    upstream: RejectingUpstream,
    *,
    run: bool = True,
    db: Database | None = None,
) -> AsyncIterator[ChannelRegistry]:
    """One more engine process on the stack's database (on `db`, its own connections): its
    channels, and its runner."""
    db = db or Database(stack.db.url)
    breakers = open_breaker_store(settings, db)
    registry = ChannelRegistry(
        ChannelDirectory(db, settings.channel_refresh_s),
        settings,
        breakers,
        adapter_factory=lambda channel: upstream,
    )
    runner = JobRunner(db, stack.media, registry, settings)
    if run:
        runner.start()
    try:
        yield registry
    finally:
        if run:
            await runner.stop()
        await registry.close()
        await breakers.close()
        await db.dispose()


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 20.0) -> None:
    """`check` holds soon (the bound is generous: the point is that it is not never)."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.02)


async def test_two_engines_together_never_run_more_than_a_channels_max_concurrency(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The schedule that breaks a count read before the claim: the first engine counts the
    channel's running jobs (none), and before it claims, two older jobs come due (their retry
    wait over) and the second engine counts too (still none) and claims those two."""
    settings = stack.settings.model_copy(update=FAST)
    await declare(stack.db, vendor(max_concurrency=2))
    retried = [await accept(stack), await accept(stack)]
    fresh = [await accept(stack), await accept(stack)]
    await set_not_before(stack, retried, time.time() + 3600)
    first_db, second_db = Database(stack.db.url), Database(stack.db.url)
    first_counted, second_counted = asyncio.Event(), asyncio.Event()
    count = job_store.in_progress_by_channel

    async def scripted_count(conn: AsyncConnection) -> dict[str, int]:
        counted = await count(conn)
        if conn.engine is first_db.engine and not first_counted.is_set():
            first_counted.set()
            await second_counted.wait()
        elif conn.engine is second_db.engine:
            second_counted.set()
        return counted

    monkeypatch.setattr(job_store, "in_progress_by_channel", scripted_count)
    upstream = SlowUpstream(run_s=0.2)
    async with engine(stack, settings, upstream, db=first_db):
        await first_counted.wait()
        await set_not_before(stack, retried, None)
        async with engine(stack, settings, upstream, db=second_db):
            statuses = await asyncio.gather(*(wait_terminal(stack, job) for job in retried + fresh))
    assert statuses == [JobStatus.COMPLETED] * 4
    assert upstream.peak <= 2, upstream.peak


async def set_not_before(stack: Stack, job_ids: list[str], not_before: float | None) -> None:
    async with stack.db.write() as conn:
        await conn.execute(
            update(job_table).where(job_table.c.id.in_(job_ids)).values(not_before=not_before)
        )


async def test_a_failover_takes_a_slot_only_on_a_channel_with_room(stack: Stack) -> None:
    """The first channel fails every submit; the second, with room for one job, takes the
    jobs that fail over to it one at a time (the others wait their turn, retrying)."""

    class Unreachable(SlowUpstream):
        async def submit(self, request: UpstreamRequest, key: str) -> str:
            raise UpstreamError("down", code="upstream_unavailable", kind=FailureKind.UNAVAILABLE)

    settings = stack.settings.model_copy(
        update={
            **FAST,
            "circuit_failure_threshold": 1000,
            "max_attempts": 50,
            "dispatch_retry_s": 0.01,
        }
    )
    first, second = vendor(priority=10, max_concurrency=8), vendor(max_concurrency=1)
    await declare(stack.db, first)
    await declare(stack.db, second)
    working = SlowUpstream(run_s=0.2)
    doubles = {first.name: Unreachable(0.0), second.name: working}
    jobs = [await accept(stack) for _ in range(4)]
    db = Database(stack.db.url)
    breakers = open_breaker_store(settings, db)
    registry = ChannelRegistry(
        ChannelDirectory(db, settings.channel_refresh_s),
        settings,
        breakers,
        adapter_factory=lambda channel: doubles[channel.name],
    )
    runner = JobRunner(db, stack.media, registry, settings)
    runner.start()
    try:
        statuses = await asyncio.gather(*(wait_terminal(stack, job) for job in jobs))
    finally:
        await runner.stop()
        await registry.close()
        await db.dispose()
    assert statuses == [JobStatus.COMPLETED] * len(jobs)
    assert working.peak == 1


@pytest.fixture(params=["database", "redis"])
def breaker_settings(request: pytest.FixtureRequest, stack: Stack) -> Settings:
    """The engines' settings, their breakers in the database or in Redis."""
    settings = stack.settings.model_copy(update=FAST)
    if request.param == "redis":
        settings = settings.model_copy(update={"redis_url": redis_url()})
    return settings


def outage() -> UpstreamError:
    return UpstreamError("down", code="upstream_unavailable", kind=FailureKind.UNAVAILABLE)


async def test_a_breaker_one_engine_trips_keeps_the_other_off_and_trips_add_up_to_a_switch_off(
    stack: Stack, breaker_settings: Settings
) -> None:
    channel = vendor()
    await declare(stack.db, channel)
    upstream = RejectingUpstream()
    async with (
        engine(stack, breaker_settings, upstream, run=False) as first,
        engine(stack, breaker_settings, upstream, run=False) as second,
    ):
        assert await second.plan(SORA_2_REQUEST, {}) == [channel]
        for _ in range(2):  # the threshold: the circuit opens (trip 1)
            verdict = await first.health.record_failure(channel, "sk-up-1", outage())
            assert verdict.disable_reason is None

        async def kept_off() -> bool:
            return await second.plan(SORA_2_REQUEST, {}) == []

        await eventually(kept_off)
        await second.health.record_failure(channel, "sk-up-1", outage())
        verdict = await second.health.record_failure(channel, "sk-up-1", outage())  # trip 2
        assert verdict.disable_reason and "4 failures in a row" in verdict.disable_reason


async def test_an_enable_through_an_api_process_clears_the_breakers_in_a_worker(
    stack: Stack, breaker_settings: Settings
) -> None:
    """Every key refused: the worker keeps off the channel for ten minutes, until the
    operator, through an API-only process, switches it on again."""
    channel = vendor()
    await declare(stack.db, channel)
    api_settings = breaker_settings.model_copy(update={"engine": False, "admin_token": ADMIN_TOKEN})
    app = create_app(api_settings)
    refused = UpstreamError("no", code="upstream_auth_failed", kind=FailureKind.AUTH)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as api,
        engine(stack, breaker_settings, RejectingUpstream(), run=False) as worker,
    ):
        for key in channel.keys:
            await worker.health.record_failure(channel, key, refused)
        assert await worker.plan(SORA_2_REQUEST, {}) == []
        shown = (await api.get(f"/admin/channels/{channel.name}", headers=ADMIN)).json()
        assert shown["health"]["keys_cooling_down"] == 2

        enabled = await api.post(f"/admin/channels/{channel.name}/enable", headers=ADMIN)
        assert enabled.status_code == 200, enabled.text

        async def back_on() -> bool:
            return await worker.plan(SORA_2_REQUEST, {}) == [channel]

        await eventually(back_on)
        shown = (await api.get(f"/admin/channels/{channel.name}", headers=ADMIN)).json()
        assert shown["health"]["keys_cooling_down"] == 0


async def test_a_dead_workers_slot_comes_back_with_its_job(stack: Stack) -> None:
    """A worker died holding the channel's only slot (a job claimed, not yet submitted): once
    its lease lapses the slot is free again, and both that job and the next one run."""
    settings = stack.settings.model_copy(update=FAST)
    channel = vendor(max_concurrency=1)
    await declare(stack.db, channel)
    orphan, waiting = await accept(stack), await accept(stack)
    async with stack.db.write() as conn:
        await conn.execute(
            update(job_table)
            .where(job_table.c.id == orphan)
            .values(
                status=JobStatus.IN_PROGRESS.value,
                lease_owner="dead-worker",
                lease_expires_at=time.time() - 1,
                channel=channel.name,
            )
        )
    upstream = SlowUpstream(run_s=0.1)
    async with engine(stack, settings, upstream):
        statuses = [await wait_terminal(stack, job) for job in (orphan, waiting)]
    assert statuses == [JobStatus.COMPLETED] * 2
    assert upstream.peak == 1
