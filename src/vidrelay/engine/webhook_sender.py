"""Delivers webhook events from the outbox: signed (Standard Webhooks), retried with
exponential backoff, every attempt recorded, SSRF-guarded.

At-least-once: a delivery is claimed with a short lease before sending, so a sender killed
mid-send leaves it due again after the lease, and the receiver de-duplicates on the stable
`webhook-id` (the event id). The event body is frozen at the first attempt, so every retry and
every destination sends the same bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncConnection
from standardwebhooks.webhooks import Webhook

from vidrelay.domain.jobs import StatusStyle
from vidrelay.domain.signed_urls import UrlSigner
from vidrelay.domain.video_object import video_object
from vidrelay.domain.webhooks import MAX_ATTEMPTS, retry_delay_s
from vidrelay.metrics import EngineMetrics
from vidrelay.outbound import OutboundError, OutboundRefused, guarded_request
from vidrelay.retry_after import retry_after_s
from vidrelay.settings import Settings
from vidrelay.store import instance as instance_store
from vidrelay.store import jobs as job_store
from vidrelay.store import webhooks as webhook_store
from vidrelay.store.database import Database

log = structlog.get_logger(__name__)
_CLAIM_LEASE_S = 120.0
_BATCH = 64
_MAX_RESPONSE_BYTES = 64 * 1024


@dataclass(frozen=True)
class _Attempt:
    delivery: webhook_store.DueDelivery
    status_code: int | None
    latency_ms: int
    error: str | None
    next_attempt_at: float | None
    delivered: bool


class WebhookSender:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        signer: UrlSigner,
        public_root: str | None,
        *,
        follow_recorded_url: bool = False,
        metrics: EngineMetrics | None = None,
    ) -> None:
        """`public_root` roots the payloads' `video_url` (none without it: a link to nowhere
        is worse than no link); `follow_recorded_url`, for an engine that serves no HTTP,
        roots them where the API server last said it serves."""
        self._db = db
        self._settings = settings
        self._signer = signer
        self._public_root = public_root
        self._follow_recorded_url = follow_recorded_url
        self._metrics = metrics or EngineMetrics(CollectorRegistry())
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="vidrelay-webhooks")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        """Finish the attempts in flight (each bounded by the receiver timeout), then stop;
        never cut a transaction halfway (see `JobRunner.stop`)."""
        self._stopping.set()
        self._wake.set()
        if self._task:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.send_due()
            except Exception:  # a transient database error must not stop deliveries
                log.exception("webhook_tick_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.webhook_tick_s)
            self._wake.clear()

    async def send_due(self) -> int:
        """Send every delivery due now; returns how many were attempted.

        Three write transactions a batch, whatever its size (claim, freeze the new events'
        bodies, record the attempts): per-delivery writes queued behind the engine's and made
        deliveries lag far behind completions under load.
        """
        attempted = 0
        while not self._stopping.is_set():
            async with self._db.write() as conn:
                due = await webhook_store.claim_due_deliveries(
                    conn, time.time(), _CLAIM_LEASE_S, _BATCH
                )
            if not due:
                break
            payloads = await self._payloads(due)
            results = await asyncio.gather(
                *(self._attempt(delivery, payloads[delivery.event_id]) for delivery in due)
            )
            async with self._db.write() as conn:
                for result in results:
                    await webhook_store.record_attempt(
                        conn,
                        result.delivery,
                        status_code=result.status_code,
                        latency_ms=result.latency_ms,
                        error=result.error,
                        next_attempt_at=result.next_attempt_at,
                        delivered=result.delivered,
                    )
            for result in results:
                self._metrics.webhook_delivery(result.delivered, result.next_attempt_at is not None)
            attempted += len(due)
            if len(due) < _BATCH:
                break
        return attempted

    async def _attempt(self, delivery: webhook_store.DueDelivery, payload: str) -> _Attempt:
        timestamp = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": "vidrelay-webhooks",
            "webhook-id": delivery.event_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": Webhook(delivery.secret).sign(
                delivery.event_id, timestamp, payload
            ),
        }
        started = time.monotonic()
        status_code: int | None = None
        retry_after: float | None = None
        error: str | None = None
        try:
            response = await guarded_request(
                "POST",
                delivery.url,
                allowlist=self._settings.outbound_allowlist_entries,
                headers=headers,
                content=payload.encode(),
                timeout_s=self._settings.webhook_timeout_s,
                max_bytes=_MAX_RESPONSE_BYTES,
            )
            status_code = response.status_code
            retry_after = retry_after_s(response.headers.get("retry-after"))
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except (OutboundError, OutboundRefused) as failure:
            error = str(failure) or type(failure).__name__
        latency_ms = int((time.monotonic() - started) * 1000)
        delivered = error is None
        attempts_made = delivery.attempts + 1
        next_attempt_at = None
        if not delivered and attempts_made < MAX_ATTEMPTS:
            base = self._settings.webhook_retry_base_s
            next_attempt_at = time.time() + retry_delay_s(attempts_made, base, retry_after)
        log.info(
            "webhook_attempt",
            job_id=delivery.job_id,
            channel=delivery.channel,
            delivery_id=delivery.id,
            event_id=delivery.event_id,
            status_code=status_code,
            delivered=delivered,
        )
        return _Attempt(delivery, status_code, latency_ms, error, next_attempt_at, delivered)

    async def _payloads(self, due: list[webhook_store.DueDelivery]) -> dict[str, str]:
        """Each event's body: frozen at its first attempt, so every attempt and destination
        sends the same bytes."""
        payloads = {d.event_id: d.payload for d in due if d.payload}
        fresh = {d.event_id: d for d in due if not d.payload}
        if fresh:
            async with self._db.write() as conn:
                root = self._public_root
                if self._follow_recorded_url:
                    root = await instance_store.served_url(conn)
                for event_id, delivery in fresh.items():
                    payloads[event_id] = await self._freeze_payload(conn, delivery, root)
        return payloads

    async def _freeze_payload(
        self, conn: AsyncConnection, delivery: webhook_store.DueDelivery, root: str | None
    ) -> str:
        job = await job_store.get_job(conn, delivery.job_id, include_deleted=True)
        assert job is not None, "an event always names a stored job"
        video = video_object(job, StatusStyle.OPENAI, self._signer, root)
        event = {
            "id": delivery.event_id,
            "object": "event",
            "type": delivery.event_type,
            "created_at": delivery.event_created_at,
            "data": {"id": job.id, "video": video},
        }
        return await webhook_store.freeze_payload(
            conn, delivery.event_id, json.dumps(event, separators=(",", ":"))
        )
