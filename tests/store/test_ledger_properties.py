"""Property: whatever happens (top-ups, submits, retries with idempotency keys, upstream
completions and failures, repeated failures, deletes), at every step the balance equals the
top-ups minus the prices of the jobs that did not fail, and no job is charged or refunded twice.

A stateful hypothesis machine drives the real API (in-process ASGI) and the store's worker-side
transitions (claim, complete, fail-and-refund) on SQLite.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule
from sqlalchemy import func, select

from tests.conftest import make_settings
from vidrelay.api.app import create_app
from vidrelay.domain.pricing import usd_to_micros
from vidrelay.store import accounts
from vidrelay.store import jobs as job_store
from vidrelay.store.tables import jobs, ledger_entries

PRICE_PER_SECOND = 100_000  # sora-2


class LedgerMachine(RuleBasedStateMachine):
    videos = Bundle("videos")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.directory = Path(tempfile.mkdtemp(prefix="vr-ledger-"))
        config = make_settings(
            self.directory / "data",
            f"sqlite+aiosqlite:///{self.directory / 'db.sqlite'}",
            engine=False,
        )
        self.app = create_app(config)
        self.lifespan = self.app.router.lifespan_context(self.app)
        self.run(self.lifespan.__aenter__())
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url="http://testserver"
        )
        self.key, self.tenant_id = self.run(self._tenant())
        self.top_ups = 0
        self.idempotency: dict[str, tuple[tuple[str, str], str]] = {}
        self.prices: dict[str, int] = {}
        self.failed: set[str] = set()
        self.finished: set[str] = set()

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    async def _tenant(self) -> tuple[str, str]:
        async with self.app.state.context.db.write() as conn:
            tenant = await accounts.ensure_tenant(conn, "prop")
            _id, key = await accounts.create_key(conn, tenant.id)
        return key, tenant.id

    def teardown(self) -> None:
        self.run(self.http.aclose())
        self.run(self.lifespan.__aexit__(None, None, None))
        self.loop.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    def balance(self) -> int:
        return sum(self.prices[v] for v in self.prices if v not in self.failed)

    @rule(usd=st.integers(min_value=1, max_value=3))
    def top_up(self, usd: int) -> None:
        async def credit() -> None:
            async with self.app.state.context.db.write() as conn:
                await accounts.top_up(conn, self.tenant_id, usd_to_micros(usd), "prop")

        self.run(credit())
        self.top_ups += usd_to_micros(usd)

    @rule(
        target=videos,
        seconds=st.sampled_from(["4", "8", "12"]),
        prompt=st.sampled_from(["a boat", "a kite"]),
        idempotency_key=st.sampled_from([None, "k1", "k2", "k3"]),
    )
    def submit(self, seconds: str, prompt: str, idempotency_key: str | None) -> str:
        headers = {"Authorization": f"Bearer {self.key}"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        response = self.run(
            self.http.post(
                "/v1/videos",
                data={"prompt": prompt, "seconds": seconds},
                files={"_": (None, "")},
                headers=headers,
            )
        )
        price = PRICE_PER_SECOND * int(seconds)
        earlier = self.idempotency.get(idempotency_key or "")
        if earlier is not None:
            if earlier[0] == (prompt, seconds):
                assert response.status_code == 200, response.text
                assert response.json()["id"] == earlier[1]
                return earlier[1]
            assert response.status_code == 409, response.text
            return earlier[1]
        available = self.top_ups - self.balance()
        if price > available:
            assert response.status_code == 429, response.text
            assert response.json()["error"]["code"] == "insufficient_quota"
            return ""
        assert response.status_code == 200, response.text
        video_id: str = response.json()["id"]
        self.prices[video_id] = price
        if idempotency_key:
            self.idempotency[idempotency_key] = ((prompt, seconds), video_id)
        return video_id

    @rule(video=videos)
    def upstream_completes(self, video: str) -> None:
        async def complete() -> bool:
            async with self.app.state.context.db.write() as conn:
                done = False
                for queued in await job_store.due_queued(conn, time.time(), 100):
                    job = await job_store.claim_job(conn, queued.id, "worker-a", 1e12, None)
                    if job is not None and job.id == video:
                        done = await job_store.mark_completed(conn, video, "worker-a", 2**40)
                await job_store.requeue_owned(conn, "worker-a")
                return done

        if video and self.run(complete()):
            assert video not in self.finished
            self.finished.add(video)

    @rule(video=videos)
    def upstream_fails(self, video: str) -> None:
        async def fail() -> bool:
            async with self.app.state.context.db.write() as conn:
                return await job_store.fail_and_refund(conn, video, "upstream_error", "boom")

        if not video:
            return
        refunded = self.run(fail())
        assert refunded == (video not in self.finished)
        if refunded:
            self.failed.add(video)
            self.finished.add(video)

    @rule(video=videos)
    def client_deletes(self, video: str) -> None:
        if not video:
            return
        response = self.run(
            self.http.delete(f"/v1/videos/{video}", headers={"Authorization": f"Bearer {self.key}"})
        )
        if video in self.finished:
            assert response.status_code in (200, 404)
        else:
            assert response.status_code == 409

    @invariant()
    def balance_is_top_ups_minus_prices_of_jobs_not_failed(self) -> None:
        async def observed() -> tuple[int, int, int, int]:
            async with self.app.state.context.db.read() as conn:
                balance = await accounts.tenant_balance(conn, self.tenant_id)
                ledger = await accounts.ledger_sum(conn, self.tenant_id)
                doubled = await conn.scalar(
                    select(func.count()).select_from(
                        select(ledger_entries.c.job_id, ledger_entries.c.kind)
                        .where(ledger_entries.c.job_id.is_not(None))
                        .group_by(ledger_entries.c.job_id, ledger_entries.c.kind)
                        .having(func.count() > 1)
                        .subquery()
                    )
                )
                job_count = await conn.scalar(select(func.count()).select_from(jobs))
                return balance, ledger, int(doubled or 0), int(job_count or 0)

        balance, ledger, doubled, job_count = self.run(observed())
        expected = self.top_ups - self.balance()
        assert balance == ledger == expected
        assert doubled == 0
        assert job_count == len(self.prices)


TestLedgerProperties = LedgerMachine.TestCase
TestLedgerProperties.settings = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
