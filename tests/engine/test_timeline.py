"""The engine writes an upstream status event only when the status or the progress moved: a
job polled a hundred times at 40 % has one event at 40 %, not a hundred."""

from __future__ import annotations

from pathlib import Path

from tests.engine.conftest import Stack, accept, wait_terminal
from tests.engine.test_runner import RejectingUpstream
from tests.fakes.openai_upstream import tiny_mp4
from vidrelay.domain.events import EventKind
from vidrelay.domain.jobs import JobStatus
from vidrelay.engine.channels import ChannelRegistry
from vidrelay.engine.runner import JobRunner
from vidrelay.store import job_events
from vidrelay.store.breakers import DatabaseBreakerStore
from vidrelay.store.channels import ChannelDirectory
from vidrelay.upstreams.base import UpstreamRequest, UpstreamState, UpstreamStatus

RUNNING = UpstreamState.RUNNING


class ScriptedUpstream(RejectingUpstream):
    """Answers its polls from a script, then completes with a real MP4."""

    def __init__(self, script: list[UpstreamStatus]) -> None:
        self.script = script
        self.polls = 0

    async def submit(self, request: UpstreamRequest, key: str) -> str:
        return "up_" + request.job_id

    async def poll(self, upstream_job_id: str, key: str) -> UpstreamStatus:
        self.polls += 1
        if self.polls <= len(self.script):
            return self.script[self.polls - 1]
        return UpstreamStatus(UpstreamState.COMPLETED, 100)

    async def fetch_content(
        self, upstream_job_id: str, variant: str, destination: Path, key: str
    ) -> bool:
        if variant != "video":
            return False
        destination.write_bytes(tiny_mp4())
        return True


async def test_a_poll_that_changes_nothing_writes_no_event(stack: Stack) -> None:
    script = [
        UpstreamStatus(RUNNING),  # no progress told: running, at 0
        UpstreamStatus(RUNNING, 10),
        UpstreamStatus(RUNNING, 10),
        UpstreamStatus(RUNNING),  # still running, progress untold: nothing new
        UpstreamStatus(RUNNING, 10),
        UpstreamStatus(RUNNING, 5),  # an upstream that wavers back adds nothing
        UpstreamStatus(RUNNING, 40),
        UpstreamStatus(RUNNING, 40),
    ]
    upstream = ScriptedUpstream(script)
    fast = {"poll_first_s": 0.02, "poll_growth": 0.0, "poll_steady_s": 0.02}
    settings = stack.settings.model_copy(update=fast)
    channels = ChannelRegistry(
        ChannelDirectory(stack.db),
        settings,
        DatabaseBreakerStore(stack.db),
        adapter_factory=lambda channel: upstream,
    )
    job_id = await accept(stack)
    runner = JobRunner(stack.db, stack.media, channels, settings)
    runner.start()
    try:
        assert await wait_terminal(stack, job_id) is JobStatus.COMPLETED
    finally:
        await runner.stop()
    assert upstream.polls == len(script) + 1
    async with stack.db.read() as conn:
        timeline = await job_events.events_of(conn, job_id)
    statuses = [dict(e.details) for e in timeline if e.kind is EventKind.UPSTREAM_STATUS]
    assert statuses == [
        {"status": "running", "progress": 0},
        {"status": "running", "progress": 10},
        {"status": "running", "progress": 40},
    ]
    assert [e.kind for e in timeline][-2:] == [EventKind.COLLECTED, EventKind.COMPLETED]
