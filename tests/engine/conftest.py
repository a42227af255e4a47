"""What the engine's tests share: a migrated database with a tenant and a key, and jobs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio

from tests.conftest import make_settings
from vidrelay.domain.catalog import DEFAULT_CATALOG, normalise_request
from vidrelay.domain.jobs import JobStatus, new_video_id
from vidrelay.media.storage import LocalMediaStore
from vidrelay.settings import Settings
from vidrelay.store import accounts
from vidrelay.store import jobs as job_store
from vidrelay.store.database import Database


@dataclass
class Stack:
    db: Database
    media: LocalMediaStore
    settings: Settings
    tenant_id: str
    key_id: str


@pytest_asyncio.fixture
async def stack(tmp_path: Path, database_url: str) -> AsyncIterator[Stack]:
    settings = make_settings(
        tmp_path / "data", database_url, lease_s=1.0, max_attempts=2, dispatch_retry_s=0.1
    )
    db = Database(database_url)
    await db.upgrade()
    async with db.write() as conn:
        tenant = await accounts.ensure_tenant(conn, "alice")
        await accounts.top_up(conn, tenant.id, 10_000_000, "test")
        key_id, _key = await accounts.create_key(conn, tenant.id)
    try:
        yield Stack(db, LocalMediaStore(settings.media_dir), settings, tenant.id, key_id)
    finally:
        await db.dispose()


async def accept(stack: Stack, seconds: str = "4") -> str:
    request = normalise_request(DEFAULT_CATALOG, prompt="a lighthouse at dusk", seconds=seconds)
    job_id = new_video_id()
    await job_store.accept_job(
        stack.db,
        job_store.NewJob(
            id=job_id,
            tenant_id=stack.tenant_id,
            key_id=stack.key_id,
            request=request,
            callback_url=None,
            has_reference=False,
        ),
    )
    return job_id


async def wait_terminal(stack: Stack, job_id: str, timeout_s: float = 60) -> JobStatus:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        async with stack.db.read() as conn:
            job = await job_store.get_job(conn, job_id)
        assert job is not None
        if job.status.is_terminal:
            return job.status
        await asyncio.sleep(0.05)
    raise AssertionError("job did not finish")
