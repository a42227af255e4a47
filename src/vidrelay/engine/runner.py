"""The job runner: claims queued jobs from the database and drives each to a terminal state.

Durability comes from the database, not from this process: a job is claimed with a lease that
the runner renews while it works. If the process dies, the lease lapses and any runner (this one
after a restart, or another replica) puts the job back in the queue; after `max_attempts` runs
it is failed and refunded instead. Completion and failure are compare-and-set, so a job ends
once and is refunded at most once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from pathlib import Path

import structlog

from vidrelay.domain.catalog import CharacterTimestamps, NormalisedRequest, RouteClass
from vidrelay.domain.jobs import JobRecord
from vidrelay.engine.channels import ChannelRegistry
from vidrelay.media.previews import previews_from_mp4
from vidrelay.media.storage import ASSET_FILES, LocalMediaStore
from vidrelay.settings import Settings
from vidrelay.store import jobs as job_store
from vidrelay.store.database import Database
from vidrelay.upstreams.base import (
    Upstream,
    UpstreamError,
    UpstreamJobLost,
    UpstreamRequest,
    UpstreamState,
)

log = structlog.get_logger(__name__)
_STOP_GRACE_S = 10.0


class JobRunner:
    def __init__(
        self,
        db: Database,
        media: LocalMediaStore,
        channels: ChannelRegistry,
        settings: Settings,
    ) -> None:
        self._db = db
        self._media = media
        self._channels = channels
        self._settings = settings
        self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self._running: dict[str, asyncio.Task[None]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._next_sweep = 0.0

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name="vidrelay-runner")

    def wake(self) -> None:
        """A job was just accepted: look at the queue now rather than at the next tick."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop and hand running jobs back to the queue at once, so a restart resumes them.

        Cooperative: the loop and the jobs stop at their next pause, never halfway through a
        database transaction (a transaction cut by cancellation can keep SQLite's write lock
        until its connection is collected). Jobs still busy after `_STOP_GRACE_S` (a long
        download, say) are cancelled.
        """
        self._stopping.set()
        if self._loop_task:
            await asyncio.gather(self._loop_task, return_exceptions=True)
        tasks = list(self._running.values())
        _done, pending = await asyncio.wait(tasks, timeout=_STOP_GRACE_S) if tasks else ((), ())
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        async with self._db.write() as conn:
            await job_store.requeue_owned(conn, self.worker_id)

    async def _pause(self, seconds: float) -> bool:
        """Sleep, or wake early when stopping; True when the runner is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self._tick()
            except Exception:  # a transient database error must not stop the runner
                log.exception("runner_tick_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.engine_tick_s)
            self._wake.clear()

    async def _tick(self) -> None:
        """Sweep lapsed leases and renew ours now and then; claim work only when there is some.

        An idle tick costs one indexed read: the runner shares the event loop with the API.
        """
        now = time.time()
        if now >= self._next_sweep:
            self._next_sweep = now + self._settings.lease_s / 3
            await self._sweep_lapsed_leases(now)
            await self.purge_expired_media(now)
            if self._running:
                async with self._db.write() as conn:
                    await job_store.renew_leases(
                        conn, self.worker_id, list(self._running), now + self._settings.lease_s
                    )
        free = self._settings.local_max_concurrency - len(self._running)
        if free <= 0:
            return
        async with self._db.read() as conn:
            if not await job_store.has_queued(conn):
                return
        async with self._db.write() as conn:
            claimed = await job_store.claim_queued(
                conn, self.worker_id, now + self._settings.lease_s, free
            )
        for job in claimed:
            self._running[job.id] = asyncio.create_task(self._run(job), name=f"job-{job.id}")

    async def purge_expired_media(self, now: float) -> int:
        """Delete the files of videos past `expires_at` (their content already answers 404);
        returns how many jobs' media went. Files first, then the mark: a crash in between
        only means deleting nothing twice."""
        async with self._db.read() as conn:
            expired = await job_store.jobs_with_expired_media(conn, int(now), limit=200)
        if not expired:
            return 0
        for job_id in expired:
            self._media.delete_job_media(job_id)
        async with self._db.write() as conn:
            await job_store.mark_media_purged(conn, expired)
        return len(expired)

    async def _sweep_lapsed_leases(self, now: float) -> None:
        async with self._db.write() as conn:
            exhausted = await job_store.release_expired_leases(
                conn, now, self._settings.max_attempts
            )
        for job_id in exhausted:
            async with self._db.write() as conn:
                await job_store.fail_and_refund(
                    conn,
                    job_id,
                    "worker_lost",
                    "The job was interrupted too many times and could not finish; "
                    "its charge has been refunded.",
                )

    async def _run(self, job: JobRecord) -> None:
        try:
            await self._drive(job)
        except asyncio.CancelledError:
            raise
        except UpstreamError as error:
            await self._fail(job, error.code, error.message)
        except Exception as error:  # recorded on the job and refunded, never left running
            log.exception("job_crashed", job_id=job.id)
            await self._fail(job, "internal_error", f"The job failed unexpectedly: {error}")
        finally:
            self._running.pop(job.id, None)

    async def _drive(self, job: JobRecord) -> None:
        upstream = self._channels.for_job(job)
        upstream_job_id = job.upstream_job_id if job.channel == upstream.name else None
        if upstream_job_id is None:
            upstream_job_id = await self._submit(job, upstream)
        progress = job.progress
        losses = 0
        while True:
            try:
                status = await upstream.poll(upstream_job_id)
            except UpstreamJobLost:
                losses += 1
                if losses >= self._settings.max_attempts:  # a job that always loses its worker
                    raise
                upstream_job_id = await self._submit(job, upstream)
                continue
            if status.state is UpstreamState.COMPLETED:
                await self._collect(job, upstream, upstream_job_id)
                return
            if status.state is UpstreamState.FAILED:
                await upstream.release(upstream_job_id)
                await self._fail(
                    job,
                    status.error_code or "generation_failed",
                    status.error_message or "The upstream failed to generate the video.",
                )
                return
            if status.progress is not None and status.progress > progress:
                progress = min(status.progress, 99)
                async with self._db.write() as conn:
                    await job_store.record_progress(conn, job.id, self.worker_id, progress)
            if await self._pause(status.poll_after_s or 1.0):
                return  # stopping: the job goes back to the queue and resumes elsewhere

    async def _submit(self, job: JobRecord, upstream: Upstream) -> str:
        request = UpstreamRequest(
            job_id=job.id,
            request=_normalised(job),
            reference_image=self._media.load_reference(job.id) if job.has_reference else None,
        )
        upstream_job_id = await upstream.submit(request)
        async with self._db.write() as conn:
            await job_store.record_submission(
                conn, job.id, self.worker_id, upstream.name, upstream_job_id
            )
        return upstream_job_id

    async def _collect(self, job: JobRecord, upstream: Upstream, upstream_job_id: str) -> None:
        scratch = self._media.scratch_dir(job.id, job.attempts)
        scratch.mkdir(parents=True, exist_ok=True)
        produced: dict[str, Path] = {}
        for variant, filename in ASSET_FILES.items():
            destination = scratch / filename
            if await upstream.fetch_content(upstream_job_id, variant, destination):
                produced[variant] = destination
        await upstream.release(upstream_job_id)
        if "video" not in produced:
            raise UpstreamError("The upstream finished without a video.", code="content_missing")
        if "thumbnail" not in produced or "spritesheet" not in produced:
            thumbnail, spritesheet = (
                scratch / ASSET_FILES["thumbnail"],
                scratch / ASSET_FILES["spritesheet"],
            )
            await asyncio.to_thread(previews_from_mp4, produced["video"], thumbnail, spritesheet)
            produced["thumbnail"], produced["spritesheet"] = thumbnail, spritesheet
        self._media.commit_assets(job.id, produced)
        self._media.discard_scratch(job.id)
        expires_at = int(time.time()) + self._settings.media_ttl_s
        async with self._db.write() as conn:
            completed = await job_store.mark_completed(
                conn,
                job.id,
                self.worker_id,
                expires_at,
                cost_micros=upstream.cost_per_second_micros * int(job.seconds),
            )
        if not completed:
            log.warning("job_completion_lost_race", job_id=job.id)

    async def _fail(self, job: JobRecord, code: str, message: str) -> None:
        async with self._db.write() as conn:
            failed = await job_store.fail_and_refund(conn, job.id, code, message, self.worker_id)
        if failed:
            log.info("job_failed", job_id=job.id, code=code)
        self._media.discard_scratch(job.id)


def _normalised(job: JobRecord) -> NormalisedRequest:
    timestamps = None
    if job.character_timestamps:
        start, end = job.character_timestamps.split(",")
        timestamps = CharacterTimestamps(float(start), float(end))
    return NormalisedRequest(
        model=job.model,
        route_class=RouteClass(job.route_class),
        seconds=job.seconds,
        size=job.size,
        prompt=job.prompt,
        character_url=job.character_url,
        character_timestamps=timestamps,
    )
