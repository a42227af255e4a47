"""A worker that dies after an upstream took a job but before it recorded the upstream's id
must not make the operator pay twice unknowingly: the next run finds that submission where the
protocol can (Kling: a task is queried by the `external_task_id` it was created with) and adopts
it; elsewhere it submits again and counts the possible orphan on the job, for the operator.

The death is simulated in process: the store's `record_submission` raises once, as a process
dying at that instant would leave things (the upstream holds the task, the database does not
know its id, the worker's lease is still on the job); a second relay on the same data
directory then starts and takes the job back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.channels.relay import STARTING_BALANCE, running_relay
from tests.channels.relay import openai_channel as make_openai_channel
from tests.channels.test_kling_channels import (
    KEY_A1,
    PRICE_V3_5S,
    declare_kling_models,
    kling_channel,
)
from tests.fakes.kling_upstream import FakeKlingUpstream
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from vidrelay.store import jobs as job_store

ADMIN = {"Authorization": "Bearer admin-secret"}
TOPPED_UP = 2 * STARTING_BALANCE  # each start of the test relay tops the tenant up


class ProcessDied(BaseException):
    """What the process's death looks like from inside: nothing after it runs."""


@pytest.fixture
def dies_before_recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The first `record_submission` kills its worker; the job ids it killed are listed."""
    original = job_store.record_submission
    died: list[str] = []

    async def record_submission(conn: Any, job_id: str, *args: Any, **kwargs: Any) -> bool:
        if not died:
            died.append(job_id)
            raise ProcessDied()
        return await original(conn, job_id, *args, **kwargs)

    monkeypatch.setattr(job_store, "record_submission", record_submission)
    yield died


async def run_through_a_death(
    tmp_path: Path, database_url: str, died: list[str], channel: Any, model: str, seconds: str
) -> tuple[dict[str, Any], dict[str, Any], tuple[int, int]]:
    """Submit one job, let its worker die at the fatal instant, restart; return the finished
    video, the admin view of the job and the money (balance, ledger sum)."""
    data_dir = tmp_path / "data"
    async with running_relay(data_dir, database_url, admin_token="admin-secret") as relay:
        if model.startswith("kling"):
            await declare_kling_models(relay)
        await relay.declare(channel)
        video_id = await relay.submit(model=model, seconds=seconds, size="1280x720")
        while not died:
            await relay.video(video_id)
        key = relay.key
    async with running_relay(data_dir, database_url, admin_token="admin-secret") as relay:
        relay.key = key
        video = await relay.finished(video_id)
        job = (await relay.client.get(f"/admin/jobs/{video_id}", headers=ADMIN)).json()
        return video, job, await relay.money()


async def test_a_kling_task_made_before_a_crash_is_found_and_adopted_not_paid_twice(
    tmp_path: Path, database_url: str, dies_before_recording: list[str]
) -> None:
    fake = FakeKlingUpstream(keys={KEY_A1})
    with fake.serve():
        fake.job_duration_s = 0.5
        video, job, money = await run_through_a_death(
            tmp_path,
            database_url,
            dies_before_recording,
            kling_channel("kling-a", fake),
            "kling-v3",
            "5",
        )
    assert video["status"] == "completed", video
    assert len(fake.submits()) == 1  # the task the dead worker made was the one collected
    [task] = fake.tasks.values()
    assert len(task.body["external_task_id"]) >= 16
    assert job["possibly_orphaned_submissions"] == 0
    assert money == (TOPPED_UP - PRICE_V3_5S,) * 2  # charged once, nothing refunded


async def test_where_the_protocol_cannot_tell_the_possible_orphan_is_counted_on_the_job(
    tmp_path: Path, database_url: str, dies_before_recording: list[str]
) -> None:
    fake = FakeOpenAIUpstream(keys={"sk-up-a1"})
    with fake.serve():
        video, job, money = await run_through_a_death(
            tmp_path,
            database_url,
            dies_before_recording,
            make_openai_channel("vendor-a", fake.url),
            "sora-2",
            "4",
        )
        submits = len(fake.requests_to("/v1/videos", "POST"))
    assert video["status"] == "completed", video
    assert submits == 2
    assert job["possibly_orphaned_submissions"] == 1
    assert money == (TOPPED_UP - 400_000,) * 2
