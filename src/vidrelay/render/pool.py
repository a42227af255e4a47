"""Run local renders in worker processes so the asyncio event loop never blocks on them.

A render is CPU-bound numpy and x264 work for seconds at a time; threads would hold the GIL
between encoder calls, so each render gets a process. Workers are started with "spawn": no
forked copy of the server's event loop, sockets or database connections ends up in them.

Progress crosses the process boundary through a tiny file, `out_dir/.progress`, holding one
integer. The worker writes it with write-to-temp + `os.replace` (readers see the old or the new
value, never a torn one), at most ten times a second. A file was chosen over a
`multiprocessing.Manager` queue or value because it needs no extra server process, works with any
executor (a `ProcessPoolExecutor` here, something else later), and has no shared state that can
be left locked or broken when a worker dies: the reader just sees the last value written.

A worker can die mid-render (the OOM killer, a SIGKILL). `ProcessPoolExecutor` then fails every
running and queued render with `BrokenProcessPool` and refuses all later work, for good. The pool
heals instead: those renders' tasks raise `RenderWorkerLost` (safe to submit again), and the next
`submit` replaces the broken executor with a fresh one.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from vidrelay.render.renderer import render_video
from vidrelay.render.spec import RenderOutputs, RenderSpec

PROGRESS_FILE = ".progress"
_WRITE_INTERVAL_SECONDS = 0.1
_PARENT_CHECK_SECONDS = 0.5


class RenderWorkerLost(RuntimeError):
    """The worker process died (OOM killer, SIGKILL) before the render finished; retryable.

    A dying worker takes down every render running or queued in the pool at that moment, not
    only its own, so this says nothing about whether the spec itself is at fault.
    """


class RenderPool:
    """A fixed number of worker processes rendering `RenderSpec`s; survives workers dying.

    Each render uses about one core (see `renderer.ENCODER_THREADS`), so size `workers` to the
    cores you want to give to rendering.
    """

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self._workers = workers
        self._lock = threading.Lock()  # guards replacing the executor and `_closed`
        self._closed = False
        self._executor = self._new_executor()

    def submit(self, spec: RenderSpec, out_dir: Path) -> RenderTask:
        """Queue a render into `out_dir`; returns at once.

        If a worker died since the last submit, the broken executor is replaced first, so the
        pool keeps working. Raises RuntimeError after `shutdown`.
        """
        out_dir.mkdir(parents=True, exist_ok=True)
        progress_path = out_dir / PROGRESS_FILE
        progress_path.unlink(missing_ok=True)  # a retry must not inherit an old attempt's value
        with self._lock:
            if self._closed:
                raise RuntimeError("the render pool has been shut down")
            try:
                future = self._executor.submit(render_in_worker, spec, out_dir)
            except BrokenProcessPool:
                # Already shut down by its own management thread, which failed every task it
                # held; this only reaps what is left of it without waiting.
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = self._new_executor()
                future = self._executor.submit(render_in_worker, spec, out_dir)
        return RenderTask(future, progress_path)

    def shutdown(self) -> None:
        """Cancel queued renders and end the workers now, running renders included.

        The engine has handed their jobs back by then (they render again wherever they are
        claimed next); a worker left running would outlive the server, orphaned.
        """
        with self._lock:
            self._closed = True
            processes = list((getattr(self._executor, "_processes", None) or {}).values())
            self._executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=5)

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_watch_parent,
            initargs=(os.getpid(),),
        )


def _watch_parent(parent_pid: int) -> None:
    """A worker's start: it ends with its parent, however the parent ends (a SIGKILL leaves no
    chance to clean up), and leaves Ctrl-C to the parent, which hands its jobs back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="vidrelay-parent-watch", daemon=True).start()


class RenderTask:
    """One submitted render, as seen from the event loop."""

    def __init__(self, future: Future[RenderOutputs], progress_path: Path) -> None:
        self._future = future
        self._progress_path = progress_path
        self._last_progress = 0

    @property
    def done(self) -> bool:
        """True once the render finished, failed or was cancelled."""
        return self._future.done()

    def progress(self) -> int:
        """Percent complete, 0..100, never decreasing; 100 only once the outputs exist.

        One small file read, cheap enough to call from the event loop.
        """
        if self._future.done() and not self._future.cancelled():
            if self._future.exception() is None:
                self._last_progress = 100
            return self._last_progress
        try:
            written = int(self._progress_path.read_text())
        except (OSError, ValueError):  # not written yet, or gone: keep the last value
            return self._last_progress
        self._last_progress = max(self._last_progress, min(written, 99))
        return self._last_progress

    async def result(self) -> RenderOutputs:
        """Wait for the render; raises the worker's exception if it failed.

        Raises RenderWorkerLost if a worker process died before this render finished: submit
        it again. Cancelling the awaiting coroutine cancels a render that has not started yet;
        a running one completes in its worker.
        """
        try:
            return await asyncio.wrap_future(self._future)
        except BrokenProcessPool as error:
            raise RenderWorkerLost(
                "a render worker process died before the render finished"
            ) from error


def render_in_worker(spec: RenderSpec, out_dir: Path) -> RenderOutputs:
    """The pool's entry point (module level so it pickles): render, reporting through a file."""
    progress_path = out_dir / PROGRESS_FILE
    writer = _ThrottledProgressFile(progress_path)
    try:
        return render_video(spec, out_dir, writer)
    finally:  # the future's completion now carries the news
        progress_path.unlink(missing_ok=True)
        writer.partial.unlink(missing_ok=True)


class _ThrottledProgressFile:
    """Writes progress atomically, at most once per _WRITE_INTERVAL_SECONDS."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self.partial = path.with_name(f"{path.name}.partial")
        self._last_write = float("-inf")

    def __call__(self, percent: int) -> None:
        now = time.monotonic()
        if now - self._last_write < _WRITE_INTERVAL_SECONDS:
            return
        self._last_write = now
        self.partial.write_text(str(percent))
        os.replace(self.partial, self._path)
