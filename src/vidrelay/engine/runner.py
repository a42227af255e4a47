"""The job runner: dispatches queued jobs to channels and drives each to a terminal state.

Durability comes from the database, not from this process: a job is claimed with a lease that
the runner renews while it works. If the process dies, the lease lapses and any runner (this one
after a restart, or another replica) puts the job back in the queue; a job already submitted
upstream is then polled again where it runs (its channel, upstream id and key are stored), and
after `max_attempts` claims it is failed and refunded instead. Completion and failure are
compare-and-set, so a job ends once and is refunded at most once.

Dispatch (DESIGN.md §5 step 2): the channels that serve the job's model and route class, by
priority tier and weight, skipping full or tripped ones; a retryable submit failure moves on to
the next channel; a rejection fails the job with the upstream's (cleaned) message. A job no
channel can take waits in the queue for `queue_wait_s`, then fails and is refunded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import structlog
from prometheus_client import CollectorRegistry

from vidrelay.domain import events
from vidrelay.domain.channels import Channel, ChannelProtocol, holds_source
from vidrelay.domain.events import JobEvent, UpstreamObservation
from vidrelay.domain.jobs import JobRecord, SubmissionIntent
from vidrelay.engine.channels import ChannelRegistry, ChannelRuntime, operations_of
from vidrelay.engine.collector import ContentGone, collect
from vidrelay.engine.health import key_ref, probe_channel
from vidrelay.engine.identity import EngineSlot
from vidrelay.engine.poller import Binding, Outcome, Poller
from vidrelay.media.storage import MediaStore
from vidrelay.metrics import EngineMetrics
from vidrelay.settings import Settings
from vidrelay.store import channels as channel_store
from vidrelay.store import job_events as event_store
from vidrelay.store import jobs as job_store
from vidrelay.store.characters import owned_characters
from vidrelay.store.database import Database
from vidrelay.upstreams.base import (
    CharacterInput,
    FailureKind,
    FindsSubmissions,
    UpstreamError,
    UpstreamRequest,
    UpstreamState,
)
from vidrelay.upstreams.messages import clean_upstream_message, key_hint, key_secrets

log = structlog.get_logger(__name__)
_STOP_GRACE_S = 10.0
_DISPATCH_BATCH = 200
_RECHECK_WAITING_S = 1.0


@dataclass(frozen=True)
class _Departure:
    """A channel that failed to take or keep a job: the failover event, once the job has
    somewhere to go (the next channel, or back to the queue)."""

    channel: str
    code: str
    message: str

    def to(self, job_id: str, channel: str | None) -> JobEvent:
        return events.failover(job_id, self.channel, channel, self.code, self.message)


class JobRunner:
    def __init__(
        self,
        db: Database,
        media: MediaStore,
        channels: ChannelRegistry,
        settings: Settings,
        on_finished: Callable[[], None] | None = None,
        slot: EngineSlot | None = None,
        metrics: EngineMetrics | None = None,
    ) -> None:
        """`on_finished` is told whenever a job ends (its webhook event is then due). `slot`,
        the engine's slot on its data directory, names its leases; at start the runner takes
        back at once the leases a dead holder of the same slot left. `metrics` counts what it
        does (a registry of its own when not given)."""
        self._db = db
        self._on_finished = on_finished or (lambda: None)
        self._media = media
        self._channels = channels
        self._settings = settings
        self._slot = slot
        self.worker_id = (
            slot.worker_id
            if slot is not None
            else f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        )
        self._running: dict[str, asyncio.Task[None]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._next_sweep = 0.0
        self._next_probe = 0.0
        self._progress: dict[str, int] = {}
        # per running job: the upstream status last seen, and the changes not yet written
        self._observed: dict[str, UpstreamObservation] = {}
        self._timeline: dict[str, list[JobEvent]] = {}
        self._busy: dict[str, int] = {}
        self._metrics = metrics or EngineMetrics(CollectorRegistry())
        self._poller = Poller(
            channels.health,
            self._pause,
            settings.job_deadline_s,
            settings.max_poll_errors,
            self._metrics,
        )

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name="vidrelay-runner")

    def wake(self) -> None:
        """A job was just accepted: look at the queue now rather than at the next tick."""
        self._wake.set()

    @property
    def running(self) -> int:
        return len(self._running)

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
        await self._flush_progress()
        async with self._db.write() as conn:
            await job_store.requeue_owned(conn, self.worker_id)

    async def _pause(self, seconds: float) -> bool:
        """Sleep, or wake early when stopping; True when the runner is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return self._stopping.is_set()

    async def _loop(self) -> None:
        if self._slot is not None:
            try:
                await self._take_back_slot_leases()
            except Exception:  # the leases then lapse as before: nothing is lost
                log.exception("lease_take_back_failed")
        while not self._stopping.is_set():
            try:
                await self._tick()
            except Exception:  # a transient database error must not stop the runner
                log.exception("runner_tick_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.engine_tick_s)
            self._wake.clear()

    async def _tick(self) -> None:
        """Housekeeping now and then; dispatch only when a queued job is due.

        An idle tick costs one indexed read: the runner shares the event loop with the API.
        """
        now = time.time()
        if now >= self._next_sweep:
            self._next_sweep = now + self._settings.lease_s / 3
            await self._sweep_lapsed_leases(now)
            await self.purge_expired_media(now)
            if self._running:
                async with self._db.write() as conn:
                    await job_store.renew_leases(conn, self.worker_id, now + self._settings.lease_s)
        await self._flush_progress()
        if now >= self._next_probe:
            self._next_probe = now + self._settings.channel_probe_s
            await self._probe_disabled_channels()
        await self._dispatch_due(now)

    async def _dispatch_due(self, now: float) -> None:
        async with self._db.read() as conn:
            candidates = await job_store.due_queued(conn, now, _DISPATCH_BATCH)
            if not candidates:
                return
            self._busy = await job_store.in_progress_by_channel(conn)
        waiting: list[str] = []
        expired: list[job_store.QueuedJob] = []
        claims: list[tuple[str, str | None, list[Channel]]] = []
        for candidate in candidates:
            if candidate.id in self._running:
                continue
            if candidate.upstream_job_id and candidate.channel:
                runtime = await self._channels.runtime(candidate.channel)
                if runtime is not None:  # submitted before: resume where it runs
                    claims.append((candidate.id, None, [runtime.definition]))
                    continue
            plan = await self._channels.plan(candidate.request, self._busy)
            if plan:
                self._busy[plan[0].name] = self._busy.get(plan[0].name, 0) + 1
                claims.append((candidate.id, plan[0].name, plan))
            elif now - candidate.created_at > self._settings.queue_wait_s:
                expired.append(candidate)
            else:
                waiting.append(candidate.id)
        if waiting:
            async with self._db.write() as conn:
                await job_store.defer_queued(conn, waiting, now + _RECHECK_WAITING_S)
        if expired:
            async with self._db.write() as conn:
                for candidate in expired:
                    if await job_store.fail_and_refund(
                        conn,
                        candidate.id,
                        "no_channel_available",
                        f"No upstream channel could take the job within "
                        f"{self._settings.queue_wait_s:g} s; its charge has been refunded.",
                    ):
                        self._metrics.job_finished(candidate.model, None, False, 0)
        if not claims:
            return
        claimed: list[tuple[JobRecord, list[Channel]]] = []
        full: list[str] = []
        async with self._db.write() as conn:
            # `self._busy` was read before: only now, under the channels' locks, is the count
            # that decides (another worker may have filled a channel since)
            fresh = {channel.name for _id, pick, plan in claims if pick for channel in plan}
            await job_store.lock_channel_slots(conn, fresh)
            self._busy = await job_store.in_progress_by_channel(conn)
            for job_id, pick, plan in claims:
                if pick is not None:  # a fresh binding: the first channel of the plan with room
                    plan = [c for c in plan if self._busy.get(c.name, 0) < c.max_concurrency]
                    if not plan:
                        full.append(job_id)
                        continue
                    pick = plan[0].name
                job = await job_store.claim_job(
                    conn, job_id, self.worker_id, now + self._settings.lease_s, pick
                )
                if job is not None:
                    claimed.append((job, plan))
                    if pick is not None:
                        self._busy[pick] = self._busy.get(pick, 0) + 1
            await job_store.defer_queued(conn, full, now + _RECHECK_WAITING_S)
        # Only once the claims are committed: a job's first write must see it is ours.
        for job, plan in claimed:
            self._running[job.id] = asyncio.create_task(self._run(job, plan), name=f"job-{job.id}")

    async def purge_expired_media(self, now: float) -> int:
        """Delete the files of videos past `expires_at` (their content already answers 404);
        returns how many jobs' media went. Files first, then the mark: a crash in between
        only means deleting nothing twice."""
        async with self._db.read() as conn:
            expired = await job_store.jobs_with_expired_media(conn, int(now), limit=200)
        if not expired:
            return 0
        for job_id in expired:
            await self._media.delete_job_media(job_id)
        async with self._db.write() as conn:
            await job_store.mark_media_purged(conn, expired)
        return len(expired)

    async def _take_back_slot_leases(self) -> None:
        """The jobs a dead process of this slot held go back to the queue now, not when
        their leases lapse: their channels' concurrency slots are free again at once."""
        assert self._slot is not None
        async with self._db.write() as conn:
            exhausted = await job_store.take_back_leases(
                conn, self._slot.lease_prefix, self.worker_id, self._settings.max_attempts
            )
        await self._fail_exhausted(exhausted)

    async def _sweep_lapsed_leases(self, now: float) -> None:
        async with self._db.write() as conn:
            exhausted = await job_store.release_expired_leases(
                conn, now, self._settings.max_attempts
            )
        await self._fail_exhausted(exhausted)

    async def _fail_exhausted(self, exhausted: list[str]) -> None:
        for job_id in exhausted:
            async with self._db.write() as conn:
                job = await job_store.get_job(conn, job_id, include_deleted=True)
                failed = await job_store.fail_and_refund(
                    conn,
                    job_id,
                    "worker_lost",
                    "The job was interrupted too many times and could not finish; "
                    "its charge has been refunded.",
                )
            if failed and job is not None:
                self._metrics.job_finished(job.model, job.channel, False, job.created_at)

    async def _flush_progress(self) -> None:
        """Progress and upstream status changes since the last tick, in one transaction."""
        if not self._progress and not self._timeline:
            return
        progress, self._progress = self._progress, {}
        observed = [event for pending in self._timeline.values() for event in pending]
        self._timeline = {}
        async with self._db.write() as conn:
            await job_store.record_progress(conn, self.worker_id, progress, observed)

    async def _probe_disabled_channels(self) -> None:
        """A channel switched off after failures comes back once a probe passes."""
        for channel in await self._channels.channels():
            if not channel.auto_disabled or not channel.enabled:
                continue
            runtime = await self._channels.runtime(channel.name)
            if runtime is None:
                continue
            result = await probe_channel(runtime.adapter, channel)
            if result.reachable and any(key.ok for key in result.keys):
                async with self._db.write() as conn:
                    await channel_store.set_auto_disabled(conn, channel.name, None)
                await self._channels.health.reset(channel.name)
                self._channels.directory.invalidate()
                log.info("channel_reenabled", channel=channel.name)

    async def _run(self, job: JobRecord, plan: list[Channel]) -> None:
        """Drive one job in its own task; every line logged meanwhile (the collector's, an
        adapter's) carries its `job_id` and the `channel` it is on, none until one is chosen."""
        structlog.contextvars.bind_contextvars(job_id=job.id, channel=job.channel)
        try:
            await self._drive(job, plan)
        except asyncio.CancelledError:
            raise
        except UpstreamError as error:
            await self._fail(job, error.code, error.message)
        except Exception as error:  # recorded on the job and refunded, never left running
            log.exception("job_crashed", job_id=job.id)
            await self._fail(job, "internal_error", f"The job failed unexpectedly: {error}")
        finally:
            self._running.pop(job.id, None)
            self._progress.pop(job.id, None)
            self._observed.pop(job.id, None)
            self._timeline.pop(job.id, None)

    async def _drive(self, job: JobRecord, plan: list[Channel]) -> None:
        binding = await self._resumed(job)
        if binding is None and job.intent is not None:
            binding = await self._recovered(job, job.intent)
        if binding is not None:  # a status already recorded is no change when seen again
            async with self._db.read() as conn:
                last = await event_store.last_upstream_observation(conn, job.id)
            if last is not None:
                self._observed[job.id] = last
        # a render dies with the process that ran it: a resumed one starts again, no loss
        restarts_render = binding is not None and binding.channel.protocol is ChannelProtocol.LOCAL
        tried: set[str] = set()
        losses = 0
        departed: _Departure | None = None
        while True:
            if binding is None:
                binding = await self._submit_somewhere(job, plan, tried, departed)
                departed = None
                if binding is None:
                    return  # back in the queue for later, or failed
            structlog.contextvars.bind_contextvars(channel=binding.channel.name)
            runtime = await self._channels.runtime(binding.channel.name)
            schedule = runtime.schedule if runtime else self._settings.poll_schedule
            gate = runtime.requests if runtime else asyncio.Semaphore(1)
            result = await self._poller.watch(
                binding, gate, schedule, lambda progress: self._note_running(job.id, progress)
            )
            restarts_render = restarts_render and result.outcome is Outcome.LOST
            if result.outcome is Outcome.STOPPED:
                return  # the job goes back to the queue and resumes elsewhere
            if result.outcome is Outcome.COMPLETED:
                await self._complete(job, binding)
                return
            await binding.adapter.release(binding.upstream_job_id)
            if result.outcome is Outcome.TIMED_OUT:
                await self._fail(
                    job,
                    "deadline_exceeded",
                    f"The upstream did not finish the video within "
                    f"{self._settings.job_deadline_s:g} s; its charge has been refunded.",
                )
                return
            if result.outcome is Outcome.FAILED:
                await self._fail_upstream(
                    job, result.error_code, result.error_message, binding.channel, binding
                )
                return
            if restarts_render:
                restarts_render = False
                log.info("local_render_resumed", job_id=job.id, channel=binding.channel.name)
                binding = None
                continue
            losses += 1  # Outcome.LOST: submit again, elsewhere when there is an elsewhere
            if losses >= self._settings.max_attempts:
                await self._fail_upstream(
                    job,
                    "upstream_job_lost",
                    "The upstream lost the job too many times; its charge has been refunded.",
                    binding.channel,
                    binding,
                )
                return
            tried.add(binding.channel.name)
            plan = await self._channels.plan(job.request, self._busy, exclude=tried) or [
                binding.channel
            ]
            log.info("job_lost_upstream", job_id=job.id, channel=binding.channel.name)
            departed = _Departure(
                binding.channel.name,
                "upstream_job_lost",
                "The upstream lost the job; it is submitted again.",
            )
            binding = None

    async def _resumed(self, job: JobRecord) -> Binding | None:
        """The binding of a job submitted before this claim (a restart, a takeover)."""
        if not (job.channel and job.upstream_job_id):
            return None
        runtime = await self._channels.runtime(job.channel)
        if runtime is None:
            return None
        return Binding(
            runtime.definition,
            runtime.adapter,
            self._key_for(runtime.definition, job.upstream_key_ref),
            job.upstream_job_id,
            float(job.submitted_at or time.time()),
        )

    def _key_for(self, channel: Channel, ref: str | None) -> str:
        """The channel's key with this reference; any key when it has left the pool since
        (any key of the account may still read the job)."""
        key = next((k for k in channel.keys if key_ref(k) == ref), None)
        return key or self._channels.health.pick_key(channel) or (channel.keys or ("",))[0]

    async def _recovered(self, job: JobRecord, intent: SubmissionIntent) -> Binding | None:
        """An earlier run was submitting the job when it died, before it recorded the upstream's
        id. Where the protocol can tell, that submission is found and adopted (the operator pays
        for it once); otherwise it is counted on the job and logged as possibly orphaned, and
        the job is submitted again."""
        structlog.contextvars.bind_contextvars(channel=intent.channel)
        runtime = await self._channels.runtime(intent.channel)
        if runtime is not None and isinstance(runtime.adapter, FindsSubmissions):
            key = self._key_for(runtime.definition, intent.key_ref)
            request = self._upstream_request(job, runtime, intent.token, await self._inputs(job))
            try:
                found = await runtime.adapter.find_submission(request, key)
            except UpstreamError as error:
                log.warning("submission_lookup_failed", job_id=job.id, kind=error.kind.value)
            else:
                if found is None:
                    return None  # it never arrived: nothing to pay for
                async with self._db.write() as conn:
                    recorded = await job_store.record_submission(
                        conn,
                        job.id,
                        self.worker_id,
                        intent.channel,
                        found,
                        intent.key_ref,
                        key_hint=_hint(key),
                    )
                if not recorded:
                    return None
                log.info("submission_recovered", job_id=job.id, channel=intent.channel)
                return Binding(
                    runtime.definition,
                    runtime.adapter,
                    key,
                    found,
                    float(job.submitted_at or time.time()),
                )
        async with self._db.write() as conn:
            await job_store.settle_lost_intent(conn, job.id, self.worker_id)
        log.warning("submission_possibly_orphaned", job_id=job.id, channel=intent.channel)
        return None

    async def _inputs(self, job: JobRecord) -> UpstreamRequest:
        """The job's stored inputs (reference image, source MP4, characters), read once per
        round of channels (a remote media store copies the files into the job's scratch);
        `_upstream_request` completes them for one channel."""
        source = job.request.source
        source_video = None
        if source is not None:
            source_video = await self._media.source_video_file(job.id, source.video_id)
        characters: list[CharacterInput] = []
        if job.request.character_ids:
            async with self._db.read() as conn:
                found = await owned_characters(conn, job.request.character_ids, job.tenant_id)
            for character in (found[i] for i in job.request.character_ids if i in found):
                clip = await self._media.character_clip_file(character.id, job.id)
                if clip is not None:
                    characters.append(CharacterInput(character.id, character.name, clip))
        return UpstreamRequest(
            job_id=job.id,
            request=job.request,
            reference_image=await self._media.load_reference(job.id) if job.has_reference else None,
            source_video=source_video,
            characters=tuple(characters),
        )

    def _upstream_request(
        self, job: JobRecord, runtime: ChannelRuntime, token: str, inputs: UpstreamRequest
    ) -> UpstreamRequest:
        return dataclasses.replace(
            inputs,
            upstream_model=runtime.definition.upstream_model(job.model),
            submission_token=token,
        )

    def _submit_key(self, job: JobRecord, channel: Channel) -> str | None:
        """The key that made the source, where the channel still holds it (the upstream knows
        the source only on that account); otherwise the healthiest key of the pool."""
        source = job.request.source
        if source is not None and holds_source(channel, job.request, operations_of):
            return self._key_for(channel, source.key_ref)
        return self._channels.health.pick_key(channel)

    async def _submit_somewhere(
        self,
        job: JobRecord,
        plan: list[Channel],
        tried: set[str],
        departed: _Departure | None = None,
    ) -> Binding | None:
        """Submit to the first channel of `plan` that takes the job; `departed`: the channel
        the job just left, and why (written with the next place the job goes)."""
        inputs = await self._inputs(job)
        last_error: UpstreamError | None = None
        await self._channels.health.refresh()
        for channel in plan:
            runtime = await self._channels.runtime(channel.name)
            key = self._submit_key(job, channel) if runtime else None
            if runtime is None or key is None:
                continue
            structlog.contextvars.bind_contextvars(channel=channel.name)
            intent = SubmissionIntent(channel.name, key_ref(key), secrets.token_hex(16))
            upstream_request = self._upstream_request(job, runtime, intent.token, inputs)
            async with self._db.write() as conn:
                if not await job_store.take_channel_slot(
                    conn, job.id, self.worker_id, channel.name, channel.max_concurrency
                ):
                    continue  # a failover to a channel that is full: the next one, or later
                if not await job_store.record_intent(conn, job.id, self.worker_id, intent):
                    return None  # our lease lapsed and another worker took the job over
                if departed is not None:
                    await event_store.record_events(conn, [departed.to(job.id, channel.name)])
                    departed = None
            try:
                async with runtime.requests, self._metrics.upstream_request(channel.name, "submit"):
                    upstream_job_id = await runtime.adapter.submit(upstream_request, key)
            except UpstreamError as error:
                tried.add(channel.name)
                await self._note_failure(runtime.definition, key, error)
                if not error.retryable:
                    await self._fail_upstream(job, error.code, error.message, channel)
                    return None
                last_error = error
                departed = _Departure(
                    channel.name,
                    error.code,
                    clean_upstream_message(error.message, _secrets_of(channel)),
                )
                log.info("submit_failed", job_id=job.id, channel=channel.name, kind=error.kind)
                continue
            await self._channels.health.record_success(channel.name, key)
            async with self._db.write() as conn:
                recorded = await job_store.record_submission(
                    conn,
                    job.id,
                    self.worker_id,
                    channel.name,
                    upstream_job_id,
                    key_ref(key),
                    key_hint=_hint(key),
                )
            if not recorded:  # our lease lapsed and another worker took the job over
                log.error("submission_not_recorded", job_id=job.id, channel=channel.name)
                await runtime.adapter.release(upstream_job_id)
                return None
            self._observed.pop(job.id, None)  # a new upstream job: its first status is news
            submitted_at = float(job.submitted_at or time.time())
            return Binding(runtime.definition, runtime.adapter, key, upstream_job_id, submitted_at)
        await self._retry_later(job, last_error, departed)
        return None

    async def _retry_later(
        self, job: JobRecord, error: UpstreamError | None, departed: _Departure | None = None
    ) -> None:
        """No channel took the job this round: back to the queue, or failed and refunded.

        Transport failures (connect errors, timeouts, 5xx) use up an attempt and back off,
        doubling; after `max_attempts` such rounds the job fails. Rate limits and refused keys
        only make it wait (the breakers keep it off those keys meanwhile), like a job whose
        channels are all full, for at most `queue_wait_s` since it was accepted.
        """
        counts = error is not None and error.kind in (FailureKind.UNAVAILABLE, FailureKind.LOST)
        waited_out = time.time() - job.created_at > self._settings.queue_wait_s
        exhausted = counts and job.attempts >= self._settings.max_attempts
        left = [departed.to(job.id, None)] if departed is not None else []
        if error is not None and (waited_out or exhausted):
            await self._fail(
                job,
                error.code,
                f"Every upstream channel failed to take the job: "
                f"{clean_upstream_message(error.message)}",
                timeline=left,
            )
            return
        wait = (
            self._settings.dispatch_retry_s * 2 ** max(0, job.attempts - 1)
            if counts
            else _RECHECK_WAITING_S
        )
        async with self._db.write() as conn:
            if await job_store.requeue_for_retry(
                conn, job.id, self.worker_id, time.time() + wait, count_attempt=counts
            ):
                await event_store.record_events(conn, left)

    async def _note_failure(self, channel: Channel, key: str, error: UpstreamError) -> None:
        verdict = await self._channels.health.record_failure(channel, key, error)
        if verdict.disable_reason is None:
            return
        reason = clean_upstream_message(verdict.disable_reason, _secrets_of(channel))
        async with self._db.write() as conn:
            await channel_store.set_auto_disabled(conn, channel.name, reason)
        self._channels.directory.invalidate()
        log.warning("channel_auto_disabled", channel=channel.name, reason=reason)

    def _note_running(self, job_id: str, progress: int | None) -> None:
        """A poll found the job running: its progress is buffered for the next tick, and an
        upstream status event too, but only when the status or progress moved."""
        last = self._observed.get(job_id)
        known = progress if progress is not None else (last.progress if last else 0)
        seen = UpstreamObservation(UpstreamState.RUNNING.value, known)
        if seen.moved_from(last):
            self._observed[job_id] = seen
            self._timeline.setdefault(job_id, []).append(seen.event(job_id))
        if progress is not None:
            self._progress[job_id] = max(progress, self._progress.get(job_id, 0))

    def _pending_timeline(self, job_id: str) -> list[JobEvent]:
        """The job's status changes not yet written: they go with its terminal transition."""
        return self._timeline.pop(job_id, [])

    async def _complete(self, job: JobRecord, binding: Binding) -> None:
        runtime = await self._channels.runtime(binding.channel.name)
        gate = runtime.downloads if runtime else asyncio.Semaphore(1)
        scratch = self._media.scratch_dir(job.id, job.attempts)
        try:
            produced = await collect(
                binding,
                scratch,
                gate,
                self._pause,
                attempts=self._settings.collect_attempts,
                retry_s=self._settings.collect_retry_s,
                metrics=self._metrics,
            )
        except ContentGone as gone:
            await binding.adapter.release(binding.upstream_job_id)
            await self._fail_upstream(
                job,
                "content_unavailable",
                f"The upstream finished the video but it could not be downloaded "
                f"({gone.error.message}); its charge has been refunded.",
                binding.channel,
                binding,
            )
            return
        if produced is None:
            return  # stopping: collected again after the restart
        await binding.adapter.release(binding.upstream_job_id)
        sizes = await asyncio.to_thread(_sizes, produced)
        await self._media.commit_assets(job.id, produced)  # every object whole, then completed
        await self._media.discard_scratch(job.id)
        collected = events.collected(job.id, sizes)
        expires_at = int(time.time()) + self._settings.media_ttl_s
        async with self._db.write() as conn:
            completed = await job_store.mark_completed(
                conn,
                job.id,
                self.worker_id,
                expires_at,
                cost_micros=binding.channel.cost_per_second_micros * int(job.seconds),
                timeline=[*self._pending_timeline(job.id), collected],
            )
        if completed:
            self._metrics.job_finished(job.model, binding.channel.name, True, job.created_at)
            self._on_finished()
        else:
            log.warning("job_completion_lost_race", job_id=job.id)

    async def _fail_upstream(
        self,
        job: JobRecord,
        code: str,
        message: str,
        channel: Channel,
        binding: Binding | None = None,
    ) -> None:
        """Fail with the upstream's own words, minus the channel's hosts and keys and, once
        submitted, the upstream's id of the job."""
        secrets_ = _secrets_of(channel) + ([binding.upstream_job_id] if binding else [])
        await self._fail(job, code, clean_upstream_message(message, secrets_), channel.name)

    async def _fail(
        self,
        job: JobRecord,
        code: str,
        message: str,
        channel: str | None = None,
        timeline: Sequence[JobEvent] = (),
    ) -> None:
        """`channel`: the one that failed it, when known (else the one it was claimed for);
        `timeline`: what led here, written with the failure."""
        async with self._db.write() as conn:
            failed = await job_store.fail_and_refund(
                conn,
                job.id,
                code,
                message,
                self.worker_id,
                timeline=[*self._pending_timeline(job.id), *timeline],
            )
        if failed:
            log.info("job_failed", job_id=job.id, code=code)
            self._metrics.job_finished(job.model, channel or job.channel, False, job.created_at)
            self._on_finished()
        await self._media.discard_scratch(job.id)


def _hint(key: str) -> str | None:
    """The key as the timeline shows it; None for a channel without keys (the local one)."""
    return key_hint(key) if key else None


def _sizes(files: dict[str, Path]) -> dict[str, int]:
    return {name: path.stat().st_size for name, path in files.items()}


def _secrets_of(channel: Channel) -> list[str]:
    host = urlsplit(channel.base_url).hostname or ""
    return [channel.base_url, host, *(part for key in channel.keys for part in key_secrets(key))]
