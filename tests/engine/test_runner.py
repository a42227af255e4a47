"""The runner drives every accepted job to `completed` or `failed`, and refunds a failure
exactly once, whichever worker gets there; a job whose worker died is taken over.

The upstream here is an in-process double of the `Upstream` protocol: what is under test is the
engine, not an adapter (adapters are tested against fake servers speaking their wire protocol).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tests.engine.conftest import Stack, accept, wait_terminal
from vidrelay.domain.jobs import JobStatus
from vidrelay.engine.channels import ChannelRegistry
from vidrelay.engine.identity import EngineSlot
from vidrelay.engine.runner import JobRunner
from vidrelay.logging_setup import configure_logging
from vidrelay.store import accounts
from vidrelay.store import jobs as job_store
from vidrelay.store.breakers import DatabaseBreakerStore
from vidrelay.store.channels import ChannelDirectory
from vidrelay.store.tables import jobs, ledger_entries
from vidrelay.upstreams.base import (
    FailureKind,
    KeyProbe,
    Upstream,
    UpstreamError,
    UpstreamJobLost,
    UpstreamRequest,
    UpstreamState,
    UpstreamStatus,
)


async def money(stack: Stack, job_id: str) -> tuple[int, int, list[str]]:
    async with stack.db.read() as conn:
        balance = await accounts.tenant_balance(conn, stack.tenant_id)
        ledger = await accounts.ledger_sum(conn, stack.tenant_id)
        kinds = (
            await conn.execute(
                select(ledger_entries.c.kind).where(ledger_entries.c.job_id == job_id)
            )
        ).scalars()
        return balance, ledger, sorted(kinds)


def registry(stack: Stack, upstream: Upstream) -> ChannelRegistry:
    """The embedded channel, run by `upstream`."""
    return ChannelRegistry(
        ChannelDirectory(stack.db),
        stack.settings,
        DatabaseBreakerStore(stack.db),
        adapter_factory=lambda channel: upstream,
    )


class RejectingUpstream:
    """Accepts the job, then reports it failed upstream (a moderation block, say)."""

    name = "double"
    cost_per_second_micros = 0

    async def submit(self, request: UpstreamRequest, key: str) -> str:
        return "up_" + request.job_id

    async def poll(self, upstream_job_id: str, key: str) -> UpstreamStatus:
        return UpstreamStatus(
            UpstreamState.FAILED, error_code="moderation_blocked", error_message="Blocked."
        )

    async def fetch_content(
        self, upstream_job_id: str, variant: str, destination: Path, key: str
    ) -> bool:
        raise AssertionError("a failed job is never collected")

    async def release(self, upstream_job_id: str) -> None:
        return None

    async def probe(self, key: str) -> KeyProbe:
        return KeyProbe("(none)", True, "double")

    async def close(self) -> None:
        return None


class ForgetfulUpstream(RejectingUpstream):
    """Loses every job it is given (a renderer whose worker always dies)."""

    async def poll(self, upstream_job_id: str, key: str) -> UpstreamStatus:
        raise UpstreamJobLost()


class UnreachableUpstream(RejectingUpstream):
    async def submit(self, request: UpstreamRequest, key: str) -> str:
        raise UpstreamError(
            "The upstream is unreachable.",
            code="upstream_unavailable",
            kind=FailureKind.UNAVAILABLE,
        )


@pytest.mark.parametrize(
    "upstream", [RejectingUpstream(), UnreachableUpstream(), ForgetfulUpstream()]
)
async def test_a_failed_job_is_marked_failed_and_refunded_once(
    stack: Stack, upstream: RejectingUpstream
) -> None:
    job_id = await accept(stack, seconds="8")
    assert (await money(stack, job_id))[:2] == (9_200_000, 9_200_000)
    runner = JobRunner(stack.db, stack.media, registry(stack, upstream), stack.settings)
    runner.start()
    try:
        assert await wait_terminal(stack, job_id) is JobStatus.FAILED
    finally:
        await runner.stop()
    async with stack.db.read() as conn:
        job = await job_store.get_job(conn, job_id)
    assert job is not None
    assert job.error_code in ("moderation_blocked", "upstream_unavailable", "upstream_job_lost")
    assert await money(stack, job_id) == (10_000_000, 10_000_000, ["charge", "refund"])


async def test_racing_failures_refund_exactly_once(stack: Stack) -> None:
    job_id = await accept(stack, seconds="12")

    async def fail() -> bool:
        async with stack.db.write() as conn:
            return await job_store.fail_and_refund(conn, job_id, "x", "racing")

    results = await asyncio.gather(*(fail() for _ in range(8)))
    assert sorted(results) == [False] * 7 + [True]
    assert await money(stack, job_id) == (10_000_000, 10_000_000, ["charge", "refund"])


async def _orphan(
    stack: Stack,
    job_id: str,
    attempts: int,
    owner: str = "ghost-worker",
    lease_expires_at: float | None = None,
) -> None:
    """Make the job look claimed by a worker that died a while ago."""
    async with stack.db.write() as conn:
        await conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(
                status="in_progress",
                lease_owner=owner,
                lease_expires_at=time.time() - 5 if lease_expires_at is None else lease_expires_at,
                attempts=attempts,
                channel="local",
                upstream_job_id="local_from_a_dead_process",
            )
        )


async def test_a_job_whose_worker_died_is_taken_over_and_completed(stack: Stack) -> None:
    job_id = await accept(stack)
    await _orphan(stack, job_id, attempts=1)
    channels = ChannelRegistry(
        ChannelDirectory(stack.db), stack.settings, DatabaseBreakerStore(stack.db)
    )
    runner = JobRunner(stack.db, stack.media, channels, stack.settings)
    runner.start()
    try:
        assert await wait_terminal(stack, job_id) is JobStatus.COMPLETED
    finally:
        await runner.stop()
        await channels.close()
    assert stack.media.asset_path(job_id, "video").exists()
    assert await money(stack, job_id) == (9_600_000, 9_600_000, ["charge"])


async def test_a_job_that_keeps_losing_its_worker_is_failed_and_refunded(stack: Stack) -> None:
    job_id = await accept(stack)
    await _orphan(stack, job_id, attempts=stack.settings.max_attempts)
    runner = JobRunner(stack.db, stack.media, registry(stack, ForgetfulUpstream()), stack.settings)
    runner.start()
    try:
        assert await wait_terminal(stack, job_id) is JobStatus.FAILED
    finally:
        await runner.stop()
    assert await money(stack, job_id) == (10_000_000, 10_000_000, ["charge", "refund"])


def test_engines_sharing_a_data_directory_hold_distinct_slots(tmp_path: Path) -> None:
    first, second = EngineSlot.acquire(tmp_path), EngineSlot.acquire(tmp_path)
    try:
        assert first.identity != second.identity
        assert not first.worker_id.startswith(second.lease_prefix)
        first.release()
        again = EngineSlot.acquire(tmp_path)  # a restart takes the slot its dead holder left
        assert again.identity == first.identity and again.worker_id != first.worker_id
        again.release()
    finally:
        second.release()


async def test_a_restart_takes_back_its_dead_predecessors_leases_at_once(
    stack: Stack, tmp_path: Path
) -> None:
    """Leases valid for an hour: only the slot proves their holder dead. A live engine's job,
    held under another slot of the same directory, is left alone."""
    dead, alive = EngineSlot.acquire(tmp_path), EngineSlot.acquire(tmp_path)
    dead.release()  # the process died: the operating system dropped its lock
    predecessors, neighbours = await accept(stack), await accept(stack)
    in_an_hour = time.time() + 3600
    await _orphan(stack, predecessors, 1, owner=dead.worker_id, lease_expires_at=in_an_hour)
    await _orphan(stack, neighbours, 1, owner=alive.worker_id, lease_expires_at=in_an_hour)
    slot = EngineSlot.acquire(tmp_path)
    channels = ChannelRegistry(
        ChannelDirectory(stack.db), stack.settings, DatabaseBreakerStore(stack.db)
    )
    runner = JobRunner(stack.db, stack.media, channels, stack.settings, slot=slot)
    runner.start()
    try:
        assert await wait_terminal(stack, predecessors) is JobStatus.COMPLETED
        async with stack.db.read() as conn:
            neighbour = await job_store.get_job(conn, neighbours)
        assert neighbour is not None and neighbour.status is JobStatus.IN_PROGRESS
    finally:
        await runner.stop()
        await channels.close()
        slot.release()
        alive.release()


class ContentlessUpstream(RejectingUpstream):
    """Finishes every job, then never hands over its video (a CDN that keeps failing)."""

    async def poll(self, upstream_job_id: str, key: str) -> UpstreamStatus:
        return UpstreamStatus(UpstreamState.COMPLETED)

    async def fetch_content(
        self, upstream_job_id: str, variant: str, destination: Path, key: str
    ) -> bool:
        raise UpstreamError("Busy.", code="upstream_unavailable", kind=FailureKind.UNAVAILABLE)


@pytest.fixture
def json_logs() -> Iterator[None]:
    configure_logging("json")
    yield
    configure_logging()


@pytest.mark.usefixtures("json_logs")
async def test_every_line_about_a_job_carries_its_id_and_channel(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = stack.settings.model_copy(
        update={"collect_attempts": 2, "collect_retry_s": 0.01, "poll_first_s": 0.01}
    )
    channels = ChannelRegistry(
        ChannelDirectory(stack.db),
        settings,
        DatabaseBreakerStore(stack.db),
        adapter_factory=lambda channel: ContentlessUpstream(),
    )
    job_id = await accept(stack)
    capsys.readouterr()
    runner = JobRunner(stack.db, stack.media, channels, settings)
    runner.start()
    try:
        assert await wait_terminal(stack, job_id) is JobStatus.FAILED
    finally:
        await runner.stop()
    async with stack.db.read() as conn:
        job = await job_store.get_job(conn, job_id)
    assert job is not None and job.channel
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    events = [line["event"] for line in lines]
    assert "content_retry" in events and "job_failed" in events  # the collector's, the runner's
    for line in lines:
        assert (line["job_id"], line["channel"]) == (job_id, job.channel), line
