"""A render pool that survives its worker processes being killed."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import av
import pytest

from vidrelay.render.pool import RenderPool, RenderWorkerLost
from vidrelay.render.spec import RenderSpec

PROMPT = "A red fox running through a snowy birch forest at dawn"


async def wait_until(check: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "the render never started"
        await asyncio.sleep(0.05)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
async def test_a_killed_worker_fails_its_render_as_lost_and_the_next_submit_heals_the_pool(
    tmp_path: Path,
) -> None:
    pool = RenderPool(workers=1)
    try:
        # Long enough that it is still rendering when killed.
        doomed = pool.submit(RenderSpec(PROMPT, 1280, 720, seconds=60), tmp_path / "doomed")
        await wait_until(lambda: doomed.progress() > 0)
        # ProcessPoolExecutor has no public handle on its workers. Private on purpose, test only:
        # `RenderPool._executor` is the current executor, and `ProcessPoolExecutor._processes`
        # is CPython's own {pid: Process} table of its live workers.
        worker_pids = list(pool._executor._processes)
        assert len(worker_pids) == 1
        os.kill(worker_pids[0], signal.SIGKILL)

        with pytest.raises(RenderWorkerLost):
            await asyncio.wait_for(doomed.result(), timeout=30)
        assert doomed.done

        healed = pool.submit(RenderSpec(PROMPT, 320, 180, seconds=1), tmp_path / "healed")
        outputs = await asyncio.wait_for(healed.result(), timeout=60)
        assert healed.progress() == 100
        with av.open(str(outputs.video)) as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            assert (stream.width, stream.height) == (320, 180)
            assert sum(1 for _ in container.decode(video=0)) == 24
    finally:
        pool.shutdown()


def test_a_shut_down_pool_refuses_new_renders(tmp_path: Path) -> None:
    pool = RenderPool(workers=1)
    pool.shutdown()
    with pytest.raises(RuntimeError):
        pool.submit(RenderSpec(PROMPT, 320, 180, seconds=1), tmp_path)
