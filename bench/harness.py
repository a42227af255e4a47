"""What the benchmark scripts share: their subprocesses, the `vidrelay` servers they start, and
a raw-asyncio keep-alive load generator.

The scripts run standalone (`python bench/<name>.py`), so they import this module by its bare
name (`from harness import ...`): a script's own folder is first on `sys.path`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

HOST = "127.0.0.1"
RESPONSE_GRACE_S = 15.0  # an answer later than this past the deadline counts as a timeout


class CannotRun(RuntimeError):
    """The benchmark cannot run (no database, the server did not start, ...)."""


# --------------------------------------------------------------------------- processes


class Processes:
    """Every subprocess a script starts, each in its own session so it can be stopped whole."""

    def __init__(self) -> None:
        self._running: list[subprocess.Popen[Any]] = []

    def start(self, argv: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
        process = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self._running.append(process)
        return process

    def start_logged(
        self, argv: list[str], env: dict[str, str], log_path: Path
    ) -> subprocess.Popen[Any]:
        """Start a server with its output in `log_path`, where `tail` finds why it failed."""
        with log_path.open("w") as log:
            return self.start(argv, env=env, stdout=log, stderr=subprocess.STDOUT)

    def stop(self, process: subprocess.Popen[Any], grace_s: float = 10.0) -> None:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)  # uvicorn shuts down gracefully on SIGTERM
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(grace_s)
        # Whatever the process left behind in its session (e.g. render pool workers).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
        if process in self._running:
            self._running.remove(process)

    def stop_all(self) -> None:
        for process in reversed(list(self._running)):
            self.stop(process)


def interrupt_on_sigterm() -> None:
    """Make SIGTERM raise KeyboardInterrupt, so a killed bench cleans up as on Ctrl-C."""

    def interrupt(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def run_bench(
    bench: Callable[[argparse.Namespace, Processes], bool],
    args: argparse.Namespace,
    on_interrupt: str = "servers stopped",
) -> int:
    """Run one benchmark with its processes stopped whatever happens: 0 when its goals were
    met, 1 when not or when it could not run, 130 when interrupted (Ctrl-C, SIGTERM)."""
    interrupt_on_sigterm()
    processes = Processes()
    try:
        return 0 if bench(args, processes) else 1
    except KeyboardInterrupt:
        print(f"\ninterrupted: {on_interrupt}", file=sys.stderr)
        return 130
    except (CannotRun, OSError, subprocess.SubprocessError) as error:
        print(f"benchmark could not run: {error}", file=sys.stderr)
        return 1
    finally:
        processes.stop_all()


def free_port() -> int:
    """A loopback port nobody listens on now, for a server started next."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def vidrelay_command() -> list[str]:
    """The `vidrelay` CLI of this interpreter's environment, so the bench runs the code it sees."""
    found = shutil.which("vidrelay", path=str(Path(sys.executable).parent)) or shutil.which(
        "vidrelay"
    )
    return [found] if found else [sys.executable, "-m", "vidrelay.cli"]


def create_key(env: dict[str, str], tenant: str, balance: object) -> str:
    """A new API key, made by `vidrelay keys create` with the settings the server gets (after
    `vidrelay db upgrade`: only serve, worker and db upgrade create a database)."""
    for command in (
        ["db", "upgrade"],
        ["keys", "create", "--tenant", tenant, "--balance", str(balance)],
    ):
        created = subprocess.run(
            [*vidrelay_command(), *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if created.returncode != 0:
            raise CannotRun(f"vidrelay {command[0]} failed:\n{created.stdout}{created.stderr}")
    if not created.stdout.strip():
        raise CannotRun(f"vidrelay keys create printed no key:\n{created.stderr}")
    return created.stdout.strip().splitlines()[-1].strip()


def tail(path: Path, lines: int = 20) -> str:
    """The end of a server's log, to say why it failed."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def wait_until_up(
    url: str, process: subprocess.Popen[Any], log_file: Path, timeout_s: float = 30.0
) -> None:
    """Wait for `url` to answer 200; `CannotRun` with the log's tail if the server exits or
    does not answer in time (an error page does not count as up)."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CannotRun(f"server exited ({process.returncode}):\n{tail(log_file)}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise CannotRun(f"server did not answer {url} within {timeout_s:.0f} s:\n{tail(log_file)}")


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values; NaN when there are none."""
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(fraction * len(sorted_values)))]


# --------------------------------------------------------------------------- python load generator


class Answer(NamedTuple):
    finished: float  # time.perf_counter() when the whole body was read
    latency: float  # seconds from writing the request to reading the body
    status: int
    marked: bool  # the body holds the load's `marker`


@dataclass
class Tally:
    """What one load-generator run saw: every answer, and what went wrong."""

    warmup_s: float
    measure_from: float
    stop_at: float
    answers: list[Answer] = field(default_factory=list)
    sent: int = 0
    timeouts: int = 0
    errors: list[BaseException] = field(default_factory=list)

    def measured(self) -> list[Answer]:
        """The answers that count: with a warm-up, those answered inside the measured window;
        with none, every answer, including those in flight at the deadline."""
        if not self.warmup_s:
            return list(self.answers)
        return [a for a in self.answers if self.measure_from <= a.finished <= self.stop_at]


async def _connection(
    request: bytes, port: int, tally: Tally, marker: bytes | None, grace_s: float
) -> None:
    clock = time.perf_counter
    stop_at = tally.stop_at
    give_up_at = stop_at + grace_s
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while True:
            started = clock()
            if started >= stop_at:
                return
            writer.write(request)
            tally.sent += 1
            try:
                async with asyncio.timeout(max(0.1, give_up_at - started)):
                    head = await reader.readuntil(b"\r\n\r\n")
                    match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                    if match is None:
                        raise RuntimeError(f"answer without content-length: {head[:200]!r}")
                    body = await reader.readexactly(int(match.group(1)))
            except TimeoutError:
                tally.timeouts += 1
                return
            finished = clock()
            marked = marker is not None and marker in body
            tally.answers.append(Answer(finished, finished - started, int(head[9:12]), marked))
            if re.search(rb"(?i)\r\nconnection:\s*close", head):
                writer.close()
                reader, writer = await asyncio.open_connection(HOST, port)
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def _load(
    request: bytes,
    port: int,
    concurrency: int,
    seconds: float,
    warmup_s: float,
    marker: bytes | None,
    grace_s: float,
) -> Tally:
    measure_from = time.perf_counter() + warmup_s
    tally = Tally(warmup_s, measure_from, measure_from + seconds)
    outcomes = await asyncio.gather(
        *(_connection(request, port, tally, marker, grace_s) for _ in range(concurrency)),
        return_exceptions=True,
    )
    tally.errors = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    return tally


def run_python_loadgen(
    request: bytes,
    port: int,
    concurrency: int,
    seconds: float,
    warmup_s: float,
    marker: bytes | None = None,
    grace_s: float = RESPONSE_GRACE_S,
) -> Tally:
    """Send `request` over `concurrency` keep-alive connections to HOST:port, each sending the
    next as soon as the last is answered, for `warmup_s` then `seconds`.

    Not wrk, where that matters: it stops sending at the deadline and lets every in-flight
    request finish (up to `grace_s`), so it counts exactly what the server answered, and a
    server never sees a client vanish with a request half read. Run it in a process of its own
    so it does not share an event loop (or a GIL) with the caller. `marker`: note which answers
    hold it (e.g. an error code) in `Answer.marked`.
    """
    with contextlib.suppress(ImportError):
        import uvloop  # the cheaper event loop, installed with uvicorn[standard]

        uvloop.install()
    return asyncio.run(_load(request, port, concurrency, seconds, warmup_s, marker, grace_s))


# --------------------------------------------------------------------------- a large catalog


def add_declared_models_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--declared-models",
        type=int,
        default=0,
        metavar="N",
        help="declare N more models (with parameters and prices) in the catalog (default 0)",
    )


def declared_catalog(path: Path, count: int) -> Path:
    """A `vidrelay.toml` declaring `count` models (each with parameters and two price rules,
    one conditional), so a benchmark can measure the server with a catalog of that size."""
    lines: list[str] = []
    for index in range(count):
        name = f"bench-model-{index:04d}"
        lines += [
            "[[models]]",
            f'name = "{name}"',
            'sizes = ["1280x720", "720x1280", "1920x1080", "1080x1920"]',
            'capabilities = ["input_reference", "audio"]',
            'routes = [{ route_class = "official", seconds_range = [2, 12] }]',
            "[[models.params]]",
            'name = "resolution"',
            'type = "enum"',
            'values = ["480p", "720p", "1080p"]',
            'default = "720p"',
            "[[models.params]]",
            'name = "seed"',
            'type = "int"',
            "min = 0",
            "max = 4294967295",
            "[[models.params]]",
            'name = "generate_audio"',
            'type = "bool"',
            "default = true",
            "[[prices]]",
            f'model = "{name}"',
            'per_second_usd = "0.05"',
            "[[prices]]",
            f'model = "{name}"',
            'when = { resolution = "1080p" }',
            'per_second_usd = "0.12"',
            "",
        ]
    path.write_text("\n".join(lines))
    return path
