"""The `local` adapter on top of the render pool: lost workers, and the font it passes on."""

from __future__ import annotations

from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from vidrelay.domain.catalog import DEFAULT_CATALOG, normalise_request
from vidrelay.render.pool import PROGRESS_FILE, RenderTask
from vidrelay.render.spec import RenderOutputs, RenderSpec
from vidrelay.upstreams.base import UpstreamJobLost, UpstreamRequest
from vidrelay.upstreams.local import LocalUpstream


class WorkerKillingPool:
    """Records each spec and hands back a task whose worker has already died."""

    def __init__(self) -> None:
        self.specs: list[RenderSpec] = []

    def submit(self, spec: RenderSpec, out_dir: Path) -> RenderTask:
        self.specs.append(spec)
        out_dir.mkdir(parents=True, exist_ok=True)
        future: Future[RenderOutputs] = Future()
        future.set_exception(BrokenProcessPool("a worker was killed"))
        return RenderTask(future, out_dir / PROGRESS_FILE)

    def shutdown(self) -> None:
        pass


def request_for(job_id: str, prompt: str = "一只红狐狸在雪地里奔跑") -> UpstreamRequest:
    normalised = normalise_request(DEFAULT_CATALOG, prompt=prompt)
    return UpstreamRequest(job_id=job_id, request=normalised, reference_image=None)


@pytest.fixture
def pool() -> WorkerKillingPool:
    return WorkerKillingPool()


@pytest.fixture
def local(pool: WorkerKillingPool, tmp_path: Path) -> LocalUpstream:
    return LocalUpstream(pool, tmp_path / "work", font_path="/fonts/house.ttf")  # type: ignore[arg-type]


async def test_a_lost_worker_is_a_lost_job_so_the_engine_resubmits(
    local: LocalUpstream, tmp_path: Path
) -> None:
    upstream_job_id = await local.submit(request_for("video_1"))
    with pytest.raises(UpstreamJobLost):
        await local.poll(upstream_job_id)
    assert not (tmp_path / "work" / upstream_job_id).exists()  # the engine never releases it
    with pytest.raises(UpstreamJobLost):  # the dead attempt is forgotten, not polled again
        await local.poll(upstream_job_id)


async def test_every_spec_carries_the_configured_font(
    local: LocalUpstream, pool: WorkerKillingPool
) -> None:
    await local.submit(request_for("video_1"))
    assert [spec.font_path for spec in pool.specs] == ["/fonts/house.ttf"]
