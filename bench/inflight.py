"""Benchmark many jobs in flight: N jobs on a fake upstream that completes each after a random
duration; how late vidrelay sees each completion, how many upstream requests each job costs,
and how much memory the server needs. `--protocol` picks the fake: `openai` (default, sora-2)
or a provider's (`ark`, `kling`, `dashscope`, `minimax`, `gemini`, `vidu`: `python -m
tests.fakes.<protocol>_upstream`, ordering that protocol's first shipped model, imported with
`vidrelay models import`).

Setup: the fake upstream (`python -m tests.fakes.openai_upstream`, its own process) and one
`vidrelay serve` (free port, fresh data dir, SQLite unless `--database-url`), with a
`vidrelay.toml` declaring one `openai` channel on the fake (max_concurrency 5000), the default
poll schedule (`--steady-s` overrides `VIDRELAY_POLL_STEADY_S`), `VIDRELAY_WEBHOOK_TICK_S=0.1`.
No local channel is declared, so no render pool should start: the server's child processes are
watched to check it.

Run: a tenant registers a webhook endpoint (`POST /v1/webhooks`) pointing at a receiver in this
process; N submits (`POST /v1/videos`, JSON, sora-2, 4 s, unique prompts) go out as fast as C
concurrent clients allow; then the bench waits for every job's `video.completed` (or
`video.failed`) webhook, up to a timeout.

Figures: completion lag = the job row's `finished_ts` (when vidrelay stored it completed) - the
fake's `completed_at` (same host, same clock), joined through the `jobs` table (vidrelay id ->
upstream id, read from the database after the run) with the fake's `GET /_stats`; then the
webhook's delivery (arrival here - `finished_ts`) and the end-to-end figure; upstream requests
per job (every request naming the job: submit, polls, video and preview downloads, over every
job the fake holds), against what the poll schedule costs when every poll is on time; the
server's peak RSS (`VmHWM` of the `vidrelay serve` process, and `VmRSS` sampled every 0.5 s);
its CPU time (all threads, and the main thread, which runs the event loop).

Goals: p99 lag < 2x the steady poll interval, < 15 upstream requests per job (mean; the max is
shown), peak RSS < 400 MB, and every job completed. Exits 0 when all are met, 1 otherwise or
when it cannot run.

    python bench/inflight.py [--quick] [--jobs N] [--min-s S] [--max-s S] [--steady-s S]
                             [--concurrency C] [--timeout-s S] [--database-url URL] [--keep]
                             [--split] [--protocol NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import (
    HOST,
    CannotRun,
    Processes,
    create_key,
    free_port,
    percentile,
    run_bench,
    tail,
    vidrelay_command,
    wait_until_up,
)

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM_KEY = "sk-bench-up"
UPSTREAM_KEY_PAIR = "ak-bench-0001:sk-bench-secret-0001"  # for protocols that sign with a pair
KEY_PAIR_PROTOCOLS = frozenset({"kling"})
CHANNEL = "bench-upstream"
BALANCE_USD = 1_000_000  # never runs out: 2.5M jobs at $0.40
MAX_CONCURRENCY = 5000
WEBHOOK_TICK_S = "0.1"
RENDER_WORKERS = "1"
LAG_GOAL_FACTOR = 2.0
REQUESTS_GOAL = 15
RSS_GOAL_MB = 400.0
SAMPLE_S = 0.5
PROGRESS_S = 10.0
QUICK = {"jobs": 200, "min_s": 3.0, "max_s": 8.0}
FULL = {"jobs": 2000, "min_s": 10.0, "max_s": 60.0}
POSTGRES_URL_ENV = "VIDRELAY_TEST_POSTGRES_URL"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- the protocol


@dataclass(frozen=True)
class Target:
    """What the bench orders, and from which fake: `openai` sells sora-2 (the fake offers
    preview variants: 3 downloads a job); a provider protocol sells its first shipped model
    (imported with `vidrelay models import`), previews derived (1 download a job)."""

    protocol: str
    model: str
    upstream_model: str
    key: str
    downloads_per_job: int
    shipped: bool

    @property
    def fake_module(self) -> str:
        return f"tests.fakes.{self.protocol}_upstream"


def target_for(protocol: str) -> Target:
    if protocol == "openai":
        return Target("openai", "sora-2", "sora-2", UPSTREAM_KEY, 3, shipped=False)
    from vidrelay.shipped_models import shipped_models

    entries = [entry for entry in shipped_models() if entry.protocol.value == protocol]
    if not entries:
        raise CannotRun(f"no shipped model of protocol {protocol!r} to order")
    key = UPSTREAM_KEY_PAIR if protocol in KEY_PAIR_PROTOCOLS else UPSTREAM_KEY
    entry = entries[0]
    return Target(protocol, entry.model.name, entry.upstream_model, key, 1, shipped=True)


def upstream_job(jobs: dict[str, dict[str, Any]], upstream_id: str | None) -> dict[str, Any]:
    """The fake's figures for the id vidrelay stored; adapters may wrap the provider's own id
    (`image2video:<task>`, `models/…/operations/<id>`)."""
    if not upstream_id:
        return {}
    for candidate in (upstream_id, upstream_id.rsplit(":", 1)[-1], upstream_id.rsplit("/", 1)[-1]):
        if candidate in jobs:
            return jobs[candidate]
    return {}


# --------------------------------------------------------------------------- /proc


def proc_memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a live process, in kB; (0, 0) once it is gone."""
    rss = hwm = 0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


def proc_cpu_s(pid: int, thread: int | None = None) -> float:
    """User + system CPU seconds of a live process (its threads included), or of one of its
    threads; NaN once gone."""
    try:
        where = f"/proc/{pid}/task/{thread}/stat" if thread else f"/proc/{pid}/stat"
        stat = Path(where).read_text()
    except OSError:
        return float("nan")
    fields = stat.rsplit(")", 1)[1].split()  # fields[0] is the state (field 3)
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def proc_children(pid: int) -> list[int]:
    children: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                children += [int(c) for c in (task / "children").read_text().split()]
    return children


@dataclass
class Monitor:
    """The server's memory and children, sampled every SAMPLE_S while the run lasts."""

    server_pid: int
    max_rss_kb: int = 0
    hwm_kb: int = 0
    children_seen: set[int] = field(default_factory=set)
    max_children_rss_kb: int = 0
    samples: int = 0

    def sample(self) -> None:
        rss, hwm = proc_memory_kb(self.server_pid)
        self.max_rss_kb = max(self.max_rss_kb, rss)
        self.hwm_kb = max(self.hwm_kb, hwm)
        children = proc_children(self.server_pid)
        self.children_seen.update(children)
        self.max_children_rss_kb = max(
            self.max_children_rss_kb, sum(proc_memory_kb(child)[0] for child in children)
        )
        self.samples += 1

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SAMPLE_S)
        self.sample()


# --------------------------------------------------------------------------- webhook receiver


@dataclass
class Receiver:
    """A raw asyncio HTTP/1.1 server recording when each video's event first arrived."""

    completed: dict[str, float] = field(default_factory=dict)
    failed: dict[str, float] = field(default_factory=dict)
    deliveries: int = 0
    duplicates: int = 0
    unreadable: list[str] = field(default_factory=list)
    other_events: dict[str, int] = field(default_factory=dict)

    async def start(self) -> tuple[asyncio.Server, int]:
        server = await asyncio.start_server(self._connection, HOST, 0, backlog=1024)
        return server, int(server.sockets[0].getsockname()[1])

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                    match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                    body = await reader.readexactly(int(match.group(1))) if match else b""
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                self._record(body, time.time())
                close = re.search(rb"(?i)\r\nconnection:\s*close", head) is not None
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n"
                    + (b"connection: close\r\n" if close else b"")
                    + b"\r\n"
                )
                await writer.drain()
                if close:
                    return
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _record(self, body: bytes, arrived: float) -> None:
        self.deliveries += 1
        try:
            event = json.loads(body)
            kind, video_id = str(event["type"]), str(event["data"]["id"])
        except (ValueError, KeyError, TypeError):
            if len(self.unreadable) < 5:
                self.unreadable.append(body[:200].decode(errors="replace"))
            return
        seen = {"video.completed": self.completed, "video.failed": self.failed}.get(kind)
        if seen is None:
            self.other_events[kind] = self.other_events.get(kind, 0) + 1
        elif video_id in seen:
            self.duplicates += 1  # at-least-once: a redelivery keeps the first arrival
        else:
            seen[video_id] = arrived


# --------------------------------------------------------------------------- the run


@dataclass
class JobRow:
    id: str
    upstream_job_id: str | None
    status: str
    error_code: str | None
    attempts: int
    finished_ts: float | None  # when vidrelay stored the job as completed (or failed)


@dataclass
class Measured:
    submitted: list[str]
    refused: dict[str, int]
    refusal_sample: str
    submit_s: float
    wait_s: float
    submits_ended_at: float  # wall clock, as the webhooks' arrivals
    timed_out: bool
    receiver: Receiver
    stats: dict[str, Any]
    upstream_cpu_s: float
    server_cpu_start_s: float
    server_cpu_run_s: float
    server_loop_cpu_run_s: float  # of these, the main thread's: the event loop
    idle_rss_kb: int
    monitor: Monitor
    rows: dict[str, JobRow]


async def submit_all(
    base: str, key: str, jobs: int, concurrency: int, target: Target
) -> tuple[list[str], dict[str, int], str]:
    """Submit `jobs` videos from `concurrency` clients; the accepted ids and the refusals."""
    import httpx

    accepted: list[str] = []
    refused: dict[str, int] = {}
    sample = ""
    numbers = iter(range(jobs))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=60, limits=limits
    ) as client:

        async def worker() -> None:
            nonlocal sample
            for number in numbers:
                body = {
                    "model": target.model,
                    "prompt": f"a paper boat on a rainy street, take {number}",
                }
                if target.protocol == "openai":
                    body["seconds"] = "4"
                try:
                    response = await client.post("/v1/videos", json=body)
                except httpx.HTTPError as error:
                    refused[type(error).__name__] = refused.get(type(error).__name__, 0) + 1
                    sample = sample or repr(error)
                    continue
                if response.status_code == 200:
                    accepted.append(str(response.json()["id"]))
                else:
                    refused[str(response.status_code)] = (
                        refused.get(str(response.status_code), 0) + 1
                    )
                    sample = sample or f"{response.status_code} {response.text[:300]}"

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return accepted, refused, sample


async def register_webhook(base: str, key: str, url: str) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        response = await client.post(
            "/v1/webhooks",
            headers={"Authorization": f"Bearer {key}"},
            json={"url": url, "event_types": ["video.completed", "video.failed"]},
        )
    if response.status_code != 200:
        raise CannotRun(f"registering the webhook failed: {response.status_code} {response.text}")


async def upstream_stats(upstream_url: str) -> dict[str, Any]:
    import httpx

    async with httpx.AsyncClient(timeout=60) as client:
        response = await client.get(f"{upstream_url}/_stats")
    response.raise_for_status()
    stats: dict[str, Any] = response.json()
    return stats


async def read_jobs(database_url: str | None, sqlite_path: Path) -> dict[str, JobRow]:
    """Every job row: the only place a vidrelay id meets its upstream id."""
    query = "SELECT id, upstream_job_id, status, error_code, attempts, finished_ts FROM jobs"
    if database_url is None:
        connection = sqlite3.connect(sqlite_path, timeout=30)
        try:
            connection.execute("PRAGMA query_only = 1")
            rows = [tuple(row) for row in connection.execute(query)]
        finally:
            connection.close()
    else:
        import asyncpg
        from sqlalchemy.engine import make_url

        dsn = make_url(database_url).set(drivername="postgresql")
        pg = await asyncpg.connect(dsn.render_as_string(hide_password=False), timeout=10)
        try:
            rows = [tuple(row) for row in await pg.fetch(query)]
        finally:
            await pg.close()
    return {
        str(r[0]): JobRow(
            str(r[0]), r[1], str(r[2]), r[3], int(r[4] or 0), None if r[5] is None else float(r[5])
        )
        for r in rows
    }


async def drive(
    args: argparse.Namespace,
    base: str,
    upstream_url: str,
    key: str,
    server_pid: int,
    upstream_pid: int,
    database_url: str | None,
    sqlite_path: Path,
) -> Measured:
    receiver = Receiver()
    hook_server, hook_port = await receiver.start()
    monitor = Monitor(server_pid)
    stop_monitor = asyncio.Event()
    monitor.sample()
    idle_rss_kb = monitor.max_rss_kb
    monitor_task = asyncio.create_task(monitor.run(stop_monitor))
    try:
        await register_webhook(base, key, f"http://{HOST}:{hook_port}/hooks/vidrelay")
        server_cpu_start = proc_cpu_s(server_pid)
        loop_cpu_start = proc_cpu_s(server_pid, server_pid)
        upstream_cpu_start = proc_cpu_s(upstream_pid)
        started = time.monotonic()
        submitted, refused, sample = await submit_all(
            base, key, args.jobs, args.concurrency, args.target
        )
        submit_s = time.monotonic() - started
        submits_ended_at = time.time()
        print(
            f"  submitted {len(submitted):,} in {submit_s:.1f} s "
            f"({len(submitted) / submit_s:,.0f}/s from {args.concurrency} clients); "
            f"{sum(refused.values())} refused",
            flush=True,
        )
        if not submitted:
            raise CannotRun(f"every submit was refused: {refused} {sample}")

        wanted = set(submitted)
        deadline = time.monotonic() + args.timeout_s
        next_progress = time.monotonic() + PROGRESS_S
        timed_out = False
        while True:
            done = len(wanted & receiver.completed.keys()) + len(wanted & receiver.failed.keys())
            if done >= len(wanted):
                break
            now = time.monotonic()
            if now >= deadline:
                timed_out = True
                break
            if now >= next_progress:
                next_progress = now + PROGRESS_S
                print(
                    f"  t={now - started:5.0f} s: {len(receiver.completed):,} completed, "
                    f"{len(receiver.failed):,} failed of {len(wanted):,}; server RSS "
                    f"{proc_memory_kb(server_pid)[0] / 1024:,.0f} MB, CPU "
                    f"{proc_cpu_s(server_pid) - server_cpu_start:,.1f} s",
                    flush=True,
                )
            await asyncio.sleep(0.1)
        wait_s = time.monotonic() - started - submit_s
        server_cpu_run = proc_cpu_s(server_pid) - server_cpu_start
        loop_cpu_run = proc_cpu_s(server_pid, server_pid) - loop_cpu_start
        upstream_cpu = proc_cpu_s(upstream_pid) - upstream_cpu_start
    finally:
        stop_monitor.set()
        await monitor_task
        hook_server.close()
    stats = await upstream_stats(upstream_url)
    rows = await read_jobs(database_url, sqlite_path)
    return Measured(
        submitted=submitted,
        refused=refused,
        refusal_sample=sample,
        submit_s=submit_s,
        wait_s=wait_s,
        submits_ended_at=submits_ended_at,
        timed_out=timed_out,
        receiver=receiver,
        stats=stats,
        upstream_cpu_s=upstream_cpu,
        server_cpu_start_s=server_cpu_start,
        server_cpu_run_s=server_cpu_run,
        server_loop_cpu_run_s=loop_cpu_run,
        idle_rss_kb=idle_rss_kb,
        monitor=monitor,
        rows=rows,
    )


# --------------------------------------------------------------------------- setup


@dataclass(frozen=True)
class PollSettings:
    first_s: float
    growth: float
    steady_s: float
    steady_given: bool
    request_concurrency: int
    downloads_per_job: int

    def requests_for(self, duration_s: float) -> int:
        """Upstream requests a job of `duration_s` costs by the schedule, if every poll is on
        time: the submit, each poll until one sees it done, and the downloads."""
        from vidrelay.domain.poll_schedule import PollSchedule

        schedule = PollSchedule(self.first_s, self.growth, self.steady_s)
        age, polls = 0.0, 0
        while age < duration_s:
            age += schedule.delay(age)
            polls += 1
        return 1 + polls + self.downloads_per_job

    def mean_requests(self, min_s: float, max_s: float, points: int = 1000) -> float:
        """`requests_for` averaged over durations spread evenly over [min_s, max_s]."""
        if max_s <= min_s:
            return float(self.requests_for(min_s))
        step = (max_s - min_s) / (points - 1)
        return sum(self.requests_for(min_s + i * step) for i in range(points)) / points


def poll_settings(steady_s: float | None, downloads_per_job: int) -> PollSettings:
    """The schedule the server runs with: its defaults, unless `--steady-s` was given."""
    from vidrelay.settings import Settings

    fields = Settings.model_fields
    return PollSettings(
        first_s=float(fields["poll_first_s"].default),
        growth=float(fields["poll_growth"].default),
        steady_s=float(fields["poll_steady_s"].default) if steady_s is None else steady_s,
        steady_given=steady_s is not None,
        request_concurrency=int(fields["channel_request_concurrency"].default),
        downloads_per_job=downloads_per_job,
    )


def write_config(path: Path, upstream_url: str, target: Target) -> None:
    path.write_text(
        "[[channels]]\n"
        f'name = "{CHANNEL}"\n'
        f'protocol = "{target.protocol}"\n'
        f'base_url = "{upstream_url}"\n'
        f'keys = ["{target.key}"]\n'
        'route_class = "official"\n'
        f'models = ["{target.model}"]\n'
        f'model_map = {{ "{target.model}" = "{target.upstream_model}" }}\n'
        f"max_concurrency = {MAX_CONCURRENCY}\n"
    )


def server_env(
    work: Path, config: Path, database_url: str | None, poll: PollSettings
) -> dict[str, str]:
    # Only the settings chosen here: no inherited VIDRELAY_* (a Redis URL, a config file...).
    env = {k: v for k, v in os.environ.items() if not k.startswith("VIDRELAY_")}
    env.update(
        VIDRELAY_DATA_DIR=str(work / "data"),
        VIDRELAY_CONFIG=str(config),
        VIDRELAY_OUTBOUND_ALLOWLIST=HOST,
        VIDRELAY_WEBHOOK_TICK_S=WEBHOOK_TICK_S,
        VIDRELAY_RENDER_WORKERS=RENDER_WORKERS,
    )
    if poll.steady_given:
        env["VIDRELAY_POLL_STEADY_S"] = f"{poll.steady_s:g}"
    if database_url:
        env["VIDRELAY_DATABASE_URL"] = database_url
    return env


def start_upstream(
    processes: Processes, args: argparse.Namespace, work: Path
) -> tuple[str, subprocess.Popen[Any], Path]:
    port = free_port()
    log_path = work / "upstream.log"
    argv = [
        sys.executable,
        *("-m", args.target.fake_module, "--host", HOST, "--port", str(port)),
        *("--min-s", str(args.min_s), "--max-s", str(args.max_s), "--keys", args.target.key),
    ]
    with log_path.open("w") as log:  # from the repository root, so `tests` imports
        upstream = processes.start(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://{HOST}:{port}"
    wait_until_up(f"{url}/_stats", upstream, log_path)
    return url, upstream, log_path


def log_problems(log_path: Path) -> tuple[dict[str, int], list[str]]:
    """Counts of the server log's warning and error lines, and the first few of them."""
    counts = {"error": 0, "warning": 0, "traceback": 0}
    first: list[str] = []
    for line in log_path.read_text(errors="replace").splitlines():
        if re.search(r"level='(error|critical)'|^ERROR:", line):
            counts["error"] += 1
        elif re.search(r"level='warning'|^WARNING:", line):
            counts["warning"] += 1
        elif line.startswith("Traceback"):
            counts["traceback"] += 1
        else:
            continue
        if len(first) < 5:
            first.append(line[:300])
    return counts, first


# --------------------------------------------------------------------------- report


SPLIT = "`vidrelay serve` (VIDRELAY_ENGINE=false) + `vidrelay worker`"
ONE_PROCESS = "`vidrelay serve` (one process)"


def describe(args: argparse.Namespace, poll: PollSettings, database: str) -> None:
    steady = f"{poll.steady_s:g} s ({'--steady-s' if poll.steady_given else 'default'})"
    print(
        f"vidrelay in-flight benchmark: {args.jobs:,} jobs on a fake OpenAI upstream, each done "
        f"after a random {args.min_s:g}-{args.max_s:g} s\n"
        f"  python {platform.python_version()}, {os.cpu_count()} CPUs shared by the server, the "
        f"fake upstream and this client; {database}\n"
        f"  server: {SPLIT if args.split else ONE_PROCESS}, one {args.target.protocol} channel "
        f"on its fake ({args.target.fake_module}; max_concurrency "
        f"{MAX_CONCURRENCY}), no local channel; VIDRELAY_RENDER_WORKERS={RENDER_WORKERS}\n"
        f"  poll schedule: first {poll.first_s:g} s, then {poll.growth:g} x the job's age, "
        f"steady {steady}; {poll.request_concurrency} requests in flight per channel "
        "(VIDRELAY_CHANNEL_REQUEST_CONCURRENCY default)\n"
        "  completion = vidrelay storing the job completed (jobs.finished_ts); the "
        f"video.completed webhook (VIDRELAY_WEBHOOK_TICK_S={WEBHOOK_TICK_S}) is shown after it\n"
        f"  submits: JSON POST /v1/videos ({args.target.model}), {args.concurrency} concurrent "
        "clients; "
        f"then up to {args.timeout_s:g} s for the last webhook\n",
        flush=True,
    )


def mb(kb: int) -> float:
    return kb / 1024


def report(
    args: argparse.Namespace,
    poll: PollSettings,
    m: Measured,
    log_counts: dict[str, int],
    log_first: list[str],
) -> bool:
    receiver = m.receiver
    wanted = m.submitted
    completed = [v for v in wanted if v in receiver.completed]
    failed = [v for v in wanted if v in receiver.failed]
    missing = [v for v in wanted if v not in receiver.completed and v not in receiver.failed]
    upstream_jobs: dict[str, dict[str, Any]] = m.stats["jobs"]

    lags: list[float] = []  # upstream completion -> vidrelay stored the job completed
    end_to_end: list[float] = []  # upstream completion -> the webhook's arrival here
    delivered: list[float] = []  # vidrelay stored it completed -> the webhook's arrival
    delivered_while_submitting: list[float] = []
    unmatched = not_done_upstream = 0
    for video_id in completed:
        row = m.rows.get(video_id)
        job = upstream_job(upstream_jobs, row.upstream_job_id) if row else None
        if row is None or job is None:
            unmatched += 1
        elif job["completed_at"] is None:
            not_done_upstream += 1
        else:
            arrived, done_upstream = receiver.completed[video_id], float(job["completed_at"])
            end_to_end.append(arrived - done_upstream)
            if row.finished_ts is not None:
                lags.append(row.finished_ts - done_upstream)
                delivered.append(arrived - row.finished_ts)
                if row.finished_ts <= m.submits_ended_at:
                    delivered_while_submitting.append(arrived - row.finished_ts)
    lags.sort()
    end_to_end.sort()
    delivered.sort()
    delivered_while_submitting.sort()

    # Every job the fake holds came from this run (resubmits included), so count them all:
    # that needs no join, which a jobs row without its upstream id would break.
    per_job = sorted(int(job["requests"]) for job in upstream_jobs.values())
    naming = sum(per_job)
    total = int(m.stats["total_requests"])
    over_goal = sum(1 for n in per_job if n >= REQUESTS_GOAL)
    mean_requests = sum(per_job) / len(per_job) if per_job else float("nan")

    hwm_kb = max(m.monitor.hwm_kb, m.monitor.max_rss_kb)
    run_s = m.submit_s + m.wait_s

    print("\nresults")
    print(
        f"  jobs: {len(wanted):,} accepted ({sum(m.refused.values())} refused"
        f"{f' {m.refused}: {m.refusal_sample}' if m.refused else ''}), "
        f"{len(completed):,} completed, {len(failed):,} failed, {len(missing):,} missing"
        f"{' (timed out)' if m.timed_out else ''}"
    )
    if failed or missing:
        statuses: dict[str, int] = {}
        for video_id in failed + missing:
            row = m.rows.get(video_id)
            label = f"{row.status}/{row.error_code}" if row else "no row"
            statuses[label] = statuses.get(label, 0) + 1
        print(f"  failed or missing, by database status/error: {statuses}")
    print(
        f"  completion lag (the fake's completed_at -> vidrelay stores the job completed, "
        f"jobs.finished_ts), {len(lags):,} jobs: p50 {percentile(lags, 0.5):.2f} s, "
        f"p99 {percentile(lags, 0.99):.2f} s, max {lags[-1] if lags else float('nan'):.2f} s, "
        f"mean {sum(lags) / len(lags) if lags else float('nan'):.2f} s"
        f"{f', min {lags[0]:.2f} s' if lags and lags[0] < 0 else ''}"
    )
    print(
        f"    then the video.completed webhook: stored -> received here p50 "
        f"{percentile(delivered, 0.5):.1f} s, p99 {percentile(delivered, 0.99):.1f} s; "
        f"end to end (upstream done -> webhook received) p50 {percentile(end_to_end, 0.5):.1f} s,"
        f" p99 {percentile(end_to_end, 0.99):.1f} s"
    )
    while_submitting = delivered_while_submitting
    if while_submitting:
        print(
            f"    stored -> webhook received for the {len(while_submitting):,} jobs stored "
            f"completed while the submits went on: p50 {percentile(while_submitting, 0.5):.1f} s, "
            f"p99 {percentile(while_submitting, 0.99):.1f} s"
        )
    if unmatched or not_done_upstream:
        print(
            f"  warning: {unmatched} completed videos whose jobs row names no upstream job known "
            f"to the fake (left out of the lag and the requests per job), {not_done_upstream} "
            "completed before the fake says they finished"
        )
    print(
        f"  upstream requests per job (submit + polls + {poll.downloads_per_job} downloads), "
        f"over the fake's {len(per_job):,} jobs: mean "
        f"{mean_requests:.2f}, "
        f"p50 {percentile([float(n) for n in per_job], 0.5):.0f}, "
        f"p99 {percentile([float(n) for n in per_job], 0.99):.0f}, "
        f"max {per_job[-1] if per_job else 0}; {over_goal} jobs at >= {REQUESTS_GOAL}"
    )
    print(
        f"    by the schedule, with every poll on time: {poll.requests_for(args.min_s)} for a "
        f"{args.min_s:g} s job, {poll.requests_for(args.max_s)} for a {args.max_s:g} s job, "
        f"{poll.mean_requests(args.min_s, args.max_s):.2f} on average (fewer means late "
        "polls); "
        f"the fake saw {total:,} requests in all ({naming:,} naming a job, "
        f"{total / len(wanted):.2f} per accepted job)"
    )
    children = sorted(m.monitor.children_seen)
    print(
        f"  server peak RSS: {mb(hwm_kb):,.0f} MB (VmHWM of the `vidrelay serve` process; "
        f"sampled VmRSS max {mb(m.monitor.max_rss_kb):,.0f} MB over {m.monitor.samples} "
        f"samples; {mb(m.idle_rss_kb):,.0f} MB idle before the submits)"
    )
    print(
        "  server children: "
        + (
            f"{len(children)} seen (pids {children[:8]}), peak RSS "
            f"{mb(m.monitor.max_children_rss_kb):,.0f} MB, NOT counted above"
            if children
            else "none (no render pool started)"
        )
    )
    print(
        f"  server CPU: {m.server_cpu_run_s:,.1f} s over the {run_s:,.0f} s run "
        f"({m.server_cpu_run_s / run_s:.0%} of one core), {m.server_loop_cpu_run_s:,.1f} s of "
        f"it in the main thread (the event loop), the rest in threads (SQLite, file I/O); "
        f"{m.server_cpu_start_s:.1f} s before the run (start, migrations); fake upstream CPU "
        f"{m.upstream_cpu_s:,.1f} s"
    )
    print(
        f"  submits: {len(wanted):,} in {m.submit_s:.1f} s = {len(wanted) / m.submit_s:,.0f}/s; "
        f"last webhook {m.wait_s:.1f} s after the last submit"
    )
    print(
        f"  webhooks: {receiver.deliveries:,} deliveries, {receiver.duplicates} duplicates"
        f"{f', other events {receiver.other_events}' if receiver.other_events else ''}"
        f"{f', unreadable {receiver.unreadable}' if receiver.unreadable else ''}"
    )
    print(
        f"  server log: {log_counts['error']} error, {log_counts['warning']} warning, "
        f"{log_counts['traceback']} traceback lines"
    )
    for line in log_first:
        print(f"    {line}")

    lag_goal = LAG_GOAL_FACTOR * poll.steady_s
    p99 = percentile(lags, 0.99)
    goals = [
        (
            f"p99 completion lag < {LAG_GOAL_FACTOR:g} x steady poll interval ({lag_goal:g} s)",
            f"{p99:.2f} s",
            bool(lags) and p99 < lag_goal,
        ),
        (
            f"upstream requests per job < {REQUESTS_GOAL} (mean)",
            f"{mean_requests:.2f} (max {per_job[-1] if per_job else 0})",
            bool(per_job) and mean_requests < REQUESTS_GOAL,
        ),
        (
            f"server peak RSS < {RSS_GOAL_MB:g} MB",
            f"{mb(hwm_kb):,.0f} MB",
            mb(hwm_kb) < RSS_GOAL_MB,
        ),
        (
            "every submitted job completed",
            f"{len(completed):,}/{args.jobs:,}",
            len(completed) == args.jobs,
        ),
    ]
    print("\ngoals")
    for name, value, met in goals:
        print(f"  {name:<52} {value:>22}  {'PASS' if met else 'FAIL'}")
    ok = all(met for _name, _value, met in goals)
    print("all goals met" if ok else "some goals NOT met")
    return ok


# --------------------------------------------------------------------------- orchestration


def bench(args: argparse.Namespace, processes: Processes) -> bool:
    poll = poll_settings(args.steady_s, args.target.downloads_per_job)
    admin_url = args.database_url
    dbs: Any = None
    database_url: str | None = None
    if admin_url:
        from accept import Databases  # the PostgreSQL helpers of the accept benchmark

        dbs = Databases(admin_url)
        dbs.check_reachable()
        database_url = dbs.create()
        shown = f"PostgreSQL via {dbs.shown} (a fresh vr_bench_* database, dropped afterwards)"
    else:
        shown = "SQLite in a temp dir"
    describe(args, poll, shown)
    started = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="vidrelay-inflight-")
    work = Path(tmp)
    try:
        try:
            upstream_url, upstream, _upstream_log = start_upstream(processes, args, work)
            config = work / "vidrelay.toml"
            env = server_env(work, config, database_url, poll)
            if args.target.shipped:  # the model first: the file's channel lists it
                imported = subprocess.run(
                    [*vidrelay_command(), "models", "import", args.target.model],
                    env={k: v for k, v in env.items() if k != "VIDRELAY_CONFIG"},
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                if imported.returncode != 0:
                    raise CannotRun(f"importing {args.target.model} failed: {imported.stderr}")
            write_config(config, upstream_url, args.target)
            key = create_key(env, "bench", BALANCE_USD)
            port = free_port()
            log_path = work / "server.log"
            argv = [*vidrelay_command(), "serve", "--host", HOST, "--port", str(port)]
            api_env = {**env, "VIDRELAY_ENGINE": "false"} if args.split else env
            server = processes.start_logged(argv, api_env, log_path)
            base = f"http://{HOST}:{port}"
            wait_until_up(f"{base}/healthz", server, log_path, timeout_s=60)
            engine = server
            if args.split:  # the jobs live in the worker: it is the process measured
                engine = processes.start_logged(
                    [*vidrelay_command(), "worker"], env, work / "worker.log"
                )
            api_cpu_start = proc_cpu_s(server.pid)
            sqlite_path = work / "data" / "vidrelay.db"
            measured = asyncio.run(
                drive(
                    args,
                    base,
                    upstream_url,
                    key,
                    engine.pid,
                    upstream.pid,
                    database_url,
                    sqlite_path,
                )
            )
            if args.split:
                print(
                    f"  split: the API process (engine off) used "
                    f"{proc_cpu_s(server.pid) - api_cpu_start:,.1f} s of CPU; the figures below "
                    "for the server are the worker's"
                )
            for process, path in ((server, log_path), (engine, work / "worker.log")):
                if process.poll() is not None:
                    print(f"warning: a server exited ({process.returncode}):\n{tail(path)}")
        finally:
            processes.stop_all()  # before the data dir and the database go
        log_counts, log_first = log_problems(log_path)
        if args.split:
            worker_counts, worker_first = log_problems(work / "worker.log")
            log_counts = {k: v + worker_counts.get(k, 0) for k, v in log_counts.items()}
            log_first += worker_first
        if args.keep:
            dump(work / "jobs.json", measured)
        ok = report(args, poll, measured, log_counts, log_first)
    finally:
        if dbs is not None and args.keep and database_url:
            print(f"\nkept the database: {database_url}")
        elif dbs is not None:
            dbs.drop_all()
        if args.keep:
            print(f"\nkept the work dir (logs, config, data): {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\ntotal time {time.monotonic() - started:.0f} s")
    return ok


def dump(path: Path, m: Measured) -> None:
    """Every job's figures as JSON, for a look after a `--keep` run."""
    upstream_jobs: dict[str, dict[str, Any]] = m.stats["jobs"]
    jobs = []
    for video_id in m.submitted:
        row = m.rows.get(video_id)
        job = upstream_job(upstream_jobs, row.upstream_job_id) if row else {}
        jobs.append(
            {
                "id": video_id,
                "upstream_job_id": row.upstream_job_id if row else None,
                "status": row.status if row else None,
                "attempts": row.attempts if row else None,
                "stored_finished_ts": row.finished_ts if row else None,
                "upstream_completed_at": job.get("completed_at"),
                "upstream_requests": job.get("requests"),
                "webhook_completed_at": m.receiver.completed.get(video_id),
                "webhook_failed_at": m.receiver.failed.get(video_id),
            }
        )
    path.write_text(json.dumps(jobs, indent=1))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/inflight.py",
        description=(
            "Many jobs in flight on a fake OpenAI upstream: completion lag, upstream requests "
            "per job and the server's peak RSS."
        ),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run: {QUICK['jobs']} jobs of {QUICK['min_s']:g}-{QUICK['max_s']:g} s "
        "(explicit --jobs/--min-s/--max-s still win)",
    )
    parser.add_argument(
        "--jobs", type=int, metavar="N", help=f"jobs to submit (default {FULL['jobs']})"
    )
    parser.add_argument(
        "--min-s",
        type=float,
        metavar="S",
        help=f"shortest upstream job (default {FULL['min_s']:g})",
    )
    parser.add_argument(
        "--max-s",
        type=float,
        metavar="S",
        help=f"longest upstream job (default {FULL['max_s']:g})",
    )
    parser.add_argument(
        "--steady-s",
        type=float,
        metavar="S",
        help="VIDRELAY_POLL_STEADY_S for the server (default: the server's own default)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, metavar="C", help="concurrent submits (default 32)"
    )
    parser.add_argument(
        "--timeout-s",
        type=float,
        metavar="S",
        help="wait for the last webhook after the last submit (default 60 + max-s + 180)",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="PostgreSQL admin URL: run on a fresh database there instead of SQLite "
        f"(e.g. ${POSTGRES_URL_ENV}, set by scripts/services.sh)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work dir (server log, data) afterwards"
    )
    parser.add_argument(
        "--protocol",
        default="openai",
        help="the upstream protocol to drive, on its fake (openai, or a provider's: ark, kling, "
        "dashscope, minimax, gemini, vidu, ordering its first shipped model)",
    )
    parser.add_argument(
        "--split",
        action="store_true",
        help="run the API with VIDRELAY_ENGINE=false and the engine as `vidrelay worker`",
    )
    args = parser.parse_args(argv)
    preset = QUICK if args.quick else FULL
    args.jobs = int(preset["jobs"]) if args.jobs is None else args.jobs
    args.min_s = float(preset["min_s"]) if args.min_s is None else args.min_s
    args.max_s = float(preset["max_s"]) if args.max_s is None else args.max_s
    if args.timeout_s is None:
        args.timeout_s = 60 + args.max_s + 180
    if args.jobs < 1 or args.concurrency < 1:
        parser.error("--jobs and --concurrency must be at least 1")
    if not 0 <= args.min_s <= args.max_s:
        parser.error("need 0 <= --min-s <= --max-s")
    if args.steady_s is not None and args.steady_s <= 0:
        parser.error("--steady-s must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        args.target = target_for(args.protocol)
    except CannotRun as error:
        print(f"benchmark could not run: {error}", file=sys.stderr)
        return 1
    return run_bench(bench, args)


if __name__ == "__main__":
    sys.exit(main())
