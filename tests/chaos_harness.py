"""The chaos run that `tests/e2e/test_chaos.py` (300 jobs) and `bench/chaos.py` (2,000) share.

The shape is `scripts/cluster.sh`'s: PostgreSQL, Redis, moto's S3 server, 2 API processes and 2
workers, started and restarted through the script itself (its `start` starts whatever is not
running). In front of them, in this process: a fake OpenAI-protocol upstream whose jobs take a
random while, some failing, with bursts of submit 500s and 429s, poll 429s and missing content;
a webhook receiver that verifies every signature; and clients, each a thread that creates a job
(`Idempotency-Key`, retried on the other API process when a connection fails, as a real client
does) and polls it to its end. Meanwhile a worker is SIGKILLed `worker_kills` times and an API
process `api_kills` times, each restarted at once.

A process's counters die with it, so each kill happens with the `jobs` table locked (no job can
be accepted or finished meanwhile): the victim's last scrape is then its final count, and the
counts of every incarnation must add up to the database's.

Media: S3 (moto), each process with its own data directory as on separate hosts
(`CLUSTER_MEDIA=dir` in `scripts/cluster.sh` shares one directory instead);
`ChaosOutcome.media` says which ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families
from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from tests.e2e.server import free_port
from tests.fakes.http_server import ThreadedServer
from tests.fakes.media import tagged_mp4
from tests.fakes.openai_upstream import FakeOpenAIUpstream

ROOT = Path(__file__).resolve().parent.parent
CLUSTER_SH = ROOT / "scripts" / "cluster.sh"
PRICE_PER_SECOND_MICROS = 100_000  # sora-2's built-in price, $0.10/s
SECONDS = ("4", "8", "12")
UPSTREAM_KEY = "sk-up-chaos-0001"
SETTLE_S = 1.0
"""With `jobs` locked, how long a victim gets to count what it committed before the lock."""
TERMINAL = ("completed", "failed")
SHORT_SETTINGS = {
    # everything that waits, short, so that 300 jobs drain in a minute or two
    "VIDRELAY_ENGINE_TICK_S": "0.1",
    "VIDRELAY_LEASE_S": "5",
    "VIDRELAY_POLL_FIRST_S": "0.3",
    "VIDRELAY_POLL_GROWTH": "0.3",
    "VIDRELAY_POLL_STEADY_S": "1",
    "VIDRELAY_POLL_AFTER_MS": "300",
    "VIDRELAY_DISPATCH_RETRY_S": "0.3",
    "VIDRELAY_COLLECT_RETRY_S": "0.2",
    "VIDRELAY_WEBHOOK_RETRY_BASE_S": "0.3",
    "VIDRELAY_WEBHOOK_TICK_S": "0.1",
    "VIDRELAY_CHANNEL_REFRESH_S": "1",
    # fault bursts are short; a tripped circuit would only slow the drain down
    "VIDRELAY_CIRCUIT_FAILURE_THRESHOLD": "10",
    "VIDRELAY_OUTBOUND_ALLOWLIST": "127.0.0.1",
    "VIDRELAY_ACCESS_LOG": "false",
    "VIDRELAY_RENDER_WORKERS": "1",
}


@dataclass(frozen=True)
class ChaosPlan:
    jobs: int = 300
    clients: int = 20
    tenants: int = 5
    balance_usd: Decimal = Decimal("40")
    """Each tenant's top-up: short of what its share of jobs costs, so some creates are refused."""
    worker_kills: int = 3
    api_kills: int = 1
    job_s: tuple[float, float] = (0.5, 3.0)
    """How long the upstream takes with a job (uniform)."""
    fail_share: float = 0.1
    """The share of jobs the upstream fails (refunded)."""
    fault_every_s: float = 2.0
    """How often a burst of upstream faults comes (submit 500 and 429, poll 429, content 404)."""
    drain_timeout_s: float = 180.0


@dataclass
class Incarnation:
    """One life of a cluster process; `final` holds its counters when it was killed."""

    name: str
    pid: int
    started: float
    killed: float | None = None
    final: dict[str, dict[str, float]] = field(default_factory=dict)
    peak_rss_kb: int = 0


@dataclass
class Create:
    """What one client saw of one create."""

    number: int
    tenant: str
    prompt: str
    seconds: str
    job_id: str | None = None
    refused: bool = False
    status: str | None = None
    attempts: int = 0
    problem: str | None = None


@dataclass
class ChaosOutcome:
    """Everything the run saw; `problems()` lists what breaks a promise, empty when none."""

    plan: ChaosPlan
    media: str
    creates: list[Create]
    jobs: dict[str, dict[str, Any]]
    """id -> the job's row."""
    ledger: dict[str, list[tuple[str, int]]]
    """job id -> its (kind, amount_micros) rows."""
    tenants: dict[str, dict[str, int]]
    """name -> balance_micros, ledger_micros, top_ups_micros, expected_micros."""
    downloads_wrong: list[str]
    webhooks_missing: list[str]
    bad_signatures: int
    metrics_problems: list[str]
    duplicates: dict[str, int]
    """job id -> upstream submissions beyond the first (the fake's jobs with its prompt)."""
    drain_s: float | None
    incarnations: list[Incarnation]
    kills: list[str]
    chaos_error: str | None = None

    @property
    def accepted(self) -> list[Create]:
        return [create for create in self.creates if create.job_id]

    def lost_jobs(self) -> list[str]:
        """Accepted jobs the database does not hold, or holds unfinished."""
        return [
            create.job_id
            for create in self.accepted
            if create.job_id
            and (
                create.job_id not in self.jobs or self.jobs[create.job_id]["status"] not in TERMINAL
            )
        ]

    def wrong_cents(self) -> int:
        """Over every tenant: |balance - expected| + |ledger sum - expected|, in cents."""
        return sum(
            (
                abs(figures["balance_micros"] - figures["expected_micros"])
                + abs(figures["ledger_micros"] - figures["expected_micros"])
            )
            // 10_000
            for figures in self.tenants.values()
        )

    def silent_duplicates(self) -> dict[str, int]:
        """Duplicate submissions the job does not own up to (`orphaned_submissions`)."""
        return {
            job_id: extra
            for job_id, extra in self.duplicates.items()
            if extra > int(self.jobs.get(job_id, {}).get("orphaned_submissions") or 0)
        }

    def problems(self) -> list[str]:
        found: list[str] = [self.chaos_error] if self.chaos_error else []
        wanted = self.plan.worker_kills + self.plan.api_kills
        if len(self.kills) != wanted:
            found.append(f"{len(self.kills)} kills of {wanted}: {self.kills}")
        found += [f"create {c.number}: {c.problem}" for c in self.creates if c.problem]
        if lost := self.lost_jobs():
            found.append(f"{len(lost)} accepted jobs lost or unfinished: {lost[:5]}")
        found += [
            f"job {c.job_id}: a client saw it {c.status}, the database holds it "
            f"{self.jobs[c.job_id]['status']}"
            for c in self.accepted
            if c.status and c.job_id in self.jobs and self.jobs[c.job_id]["status"] != c.status
        ]
        known = {create.job_id for create in self.accepted}
        if unknown := sorted(set(self.jobs) - known):
            found.append(f"{len(unknown)} jobs no client was told of: {unknown[:5]}")
        for name, figures in sorted(self.tenants.items()):
            if (
                not figures["balance_micros"]
                == figures["ledger_micros"]
                == figures["expected_micros"]
            ):
                found.append(f"tenant {name}: {figures}")
        for job_id, job in sorted(self.jobs.items()):
            rows = Counter(kind for kind, _ in self.ledger.get(job_id, []))
            wanted = Counter({"charge": 1, "refund": 1 if job["status"] == "failed" else 0})
            if +rows != +wanted:
                found.append(f"job {job_id} ({job['status']}): ledger rows {dict(rows)}")
            charge = [amount for kind, amount in self.ledger.get(job_id, []) if kind == "charge"]
            if charge and -charge[0] != job["price_micros"]:
                found.append(f"job {job_id}: charged {charge[0]}, priced {job['price_micros']}")
        if self.downloads_wrong:
            found.append(f"{len(self.downloads_wrong)} wrong downloads: {self.downloads_wrong[:5]}")
        if self.webhooks_missing:
            found.append(
                f"{len(self.webhooks_missing)} terminal events never delivered: "
                f"{self.webhooks_missing[:5]}"
            )
        if self.bad_signatures:
            found.append(f"{self.bad_signatures} webhook deliveries with a bad signature")
        found += self.metrics_problems
        if silent := self.silent_duplicates():
            found.append(f"upstream submissions not counted as orphans: {silent}")
        if self.drain_s is None:
            found.append(f"jobs still running after {self.plan.drain_timeout_s:g} s")
        return found


# --------------------------------------------------------------------------- the cluster


class Cluster:
    """`scripts/cluster.sh` on a run dir of its own; the processes it started and their pids."""

    def __init__(self, run_dir: Path, settings: dict[str, str]) -> None:
        self.run_dir = run_dir
        self.settings = settings
        """VIDRELAY_* and CLUSTER_* variables every `cluster.sh` call (and so process) gets."""

    def _script(self, command: str, timeout_s: float = 180) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **self.settings, "CLUSTER_DIR": str(self.run_dir)}
        env["PYTHON"] = sys.executable
        return subprocess.run(
            ["bash", str(CLUSTER_SH), command],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def start(self) -> None:
        started = self._script("start")
        if started.returncode != 0:
            raise RuntimeError(f"cluster.sh start failed:\n{started.stdout}{started.stderr}")

    def stop(self) -> subprocess.CompletedProcess[str]:
        return self._script("stop")

    def status(self) -> subprocess.CompletedProcess[str]:
        return self._script("status")

    @property
    def shared(self) -> dict[str, str]:
        """The run dir's `env`: database, Redis and media settings, ports."""
        values: dict[str, str] = {}
        for line in (self.run_dir / "env").read_text().splitlines():
            name, _, value = line.partition("=")
            values[name] = value.strip('"')
        return values

    def api_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.shared["CLUSTER_API_PORTS"].split()]

    def metrics_urls(self) -> dict[str, str]:
        """Process name -> its `/metrics`."""
        urls = {f"api-{n}": f"{url}/metrics" for n, url in enumerate(self.api_urls(), 1)}
        ports = self.shared["CLUSTER_WORKER_METRICS_PORTS"].split()
        urls.update(
            {f"worker-{n}": f"http://127.0.0.1:{p}/metrics" for n, p in enumerate(ports, 1)}
        )
        return urls

    def pid(self, name: str) -> int | None:
        try:
            pid = int((self.run_dir / f"{name}.pid").read_text())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def cli(self, *args: str) -> str:
        """`vidrelay ARGS…` on the cluster's database; its stdout."""
        env = {**os.environ, **self.settings, **self.shared}
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")])
        )
        done = subprocess.run(
            [sys.executable, "-m", "vidrelay.cli", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"vidrelay {' '.join(args)}: {done.stdout}{done.stderr}")
        return done.stdout

    @property
    def dsn(self) -> str:
        return self.shared["VIDRELAY_DATABASE_URL"].replace(
            "postgresql+asyncpg://", "postgresql://"
        )


def redis_url_or_skip() -> str:
    """The suite's Redis; a skip without it (a failure on CI)."""
    import pytest

    url = os.environ.get("VIDRELAY_TEST_REDIS_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("VIDRELAY_TEST_REDIS_URL must be set on CI")
        pytest.skip("VIDRELAY_TEST_REDIS_URL is not set (run the tests with scripts/test.sh)")
    return url


@contextlib.contextmanager
def fresh_database() -> Iterator[str]:
    """A PostgreSQL database of its own for one cluster, dropped afterwards (with its
    connections: the caller stops the cluster first)."""
    from tests.conftest import create_postgres_database

    url, drop = asyncio.run(create_postgres_database())
    try:
        yield url
    finally:
        asyncio.run(drop())


def cluster_settings(database_url: str, redis_url: str) -> dict[str, str]:
    """What a chaos cluster runs with: free ports, the given database and Redis, the short
    settings (the channel file is added once the fake upstream listens)."""
    return {
        **SHORT_SETTINGS,
        "VIDRELAY_DATABASE_URL": database_url,
        "VIDRELAY_REDIS_URL": redis_url,
        "CLUSTER_API_PORTS": f"{free_port()} {free_port()}",
        "CLUSTER_WORKER_METRICS_PORTS": f"{free_port()} {free_port()}",
        "CLUSTER_S3_PORT": str(free_port()),
    }


# --------------------------------------------------------------------------- metrics, memory


def scrape(url: str) -> dict[str, dict[str, float]]:
    """Family -> label values joined by `,` (sorted by label name) -> value."""
    text = httpx.get(url, timeout=10).text
    figures: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            figures.setdefault(sample.name, {})[labels] = sample.value
    return figures


def by_label(figures: dict[str, dict[str, float]], name: str, label: str) -> Counter[str]:
    """`name`'s samples summed by one label's value."""
    totals: Counter[str] = Counter()
    for labels, value in figures.get(name, {}).items():
        parts = dict(part.split("=", 1) for part in labels.split(",") if part)
        totals[parts.get(label, "")] += int(value)
    return totals


def memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a live process in kB; (0, 0) once it is gone."""
    rss = hwm = 0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1])
    return rss, hwm


# --------------------------------------------------------------------------- webhooks


class SigningReceiver:
    """Webhook endpoints per tenant (`/hooks/<tenant>`) that verify each delivery's Standard
    Webhooks signature with that tenant's secret, and refuse the first try of every 7th event
    (503), so retries happen too."""

    def __init__(self) -> None:
        self.secrets: dict[str, Webhook] = {}
        self.events: dict[str, set[tuple[str, str]]] = {}
        """tenant -> (event type, job id) delivered with a good signature."""
        self.bad_signatures = 0
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route("/hooks/{tenant}", self._hook, methods=["POST"])])

    async def _hook(self, request: Request) -> Response:
        tenant = request.path_params["tenant"]
        body = await request.body()
        try:
            event = self.secrets[tenant].verify(body, dict(request.headers))
        except (KeyError, WebhookVerificationError):
            with self._lock:
                self.bad_signatures += 1
            return PlainTextResponse("bad signature", status_code=400)
        event_id = request.headers["webhook-id"]
        with self._lock:
            self._seen[event_id] += 1
            if self._seen[event_id] == 1 and sum(map(ord, event_id)) % 7 == 0:
                return PlainTextResponse("try again", status_code=503)
            self.events.setdefault(tenant, set()).add((event["type"], event["data"]["id"]))
        return PlainTextResponse("ok")


# --------------------------------------------------------------------------- the run


class ChaosRun:
    def __init__(self, plan: ChaosPlan, run_dir: Path, settings: dict[str, str]) -> None:
        self.plan = plan
        run_dir.mkdir(parents=True, exist_ok=True)
        self.cluster = Cluster(run_dir, settings)
        self.upstream = FakeOpenAIUpstream(random_duration_s=plan.job_s, record_requests=False)
        self.upstream.fail_share = plan.fail_share
        self.upstream.content_per_prompt = True
        self.upstream.retry_after = "1"
        self.receiver = SigningReceiver()
        self.keys: dict[str, str] = {}
        self.creates: list[Create] = []
        self.incarnations: dict[str, Incarnation] = {}
        self.dead: list[Incarnation] = []
        self.kills: list[str] = []
        self._submitted = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.chaos_error: str | None = None

    # -- set-up -------------------------------------------------------------------------

    @staticmethod
    def channel_config(path: Path, upstream_url: str) -> Path:
        path.write_text(
            "[[channels]]\n"
            'name = "chaos-upstream"\n'
            'protocol = "openai"\n'
            f'base_url = "{upstream_url}"\n'
            f'keys = ["{UPSTREAM_KEY}"]\n'
            'route_class = "official"\n'
            'models = ["sora-2"]\n'
            "max_concurrency = 5000\n"
        )
        return path

    @contextlib.contextmanager
    def upstream_and_receiver(self) -> Iterator[tuple[str, str]]:
        """The fake upstream and the webhook receiver, serving: their URLs."""
        with self.upstream.serve(), ThreadedServer(self.receiver.app) as receiver:
            yield self.upstream.url, receiver.url

    def _tenants(self) -> list[str]:
        return [f"chaos-{index}" for index in range(self.plan.tenants)]

    def set_up(self, receiver_url: str) -> None:
        self.cluster.start()
        for name in ("api-1", "api-2", "worker-1", "worker-2"):
            self._note_started(name)
        api = self.cluster.api_urls()[0]
        for tenant in self._tenants():
            key = self.cluster.cli(
                "keys", "create", "--tenant", tenant, "--balance", str(self.plan.balance_usd)
            ).splitlines()[-1]
            self.keys[tenant] = key
            registered = httpx.post(
                f"{api}/v1/webhooks",
                headers={"Authorization": f"Bearer {key}"},
                json={"url": f"{receiver_url}/hooks/{tenant}"},
                timeout=30,
            )
            registered.raise_for_status()
            self.receiver.secrets[tenant] = Webhook(registered.json()["secret"])

    def _note_started(self, name: str) -> None:
        pid = self.cluster.pid(name)
        assert pid is not None, f"{name} is not running"
        self.incarnations[name] = Incarnation(name, pid, time.monotonic())

    # -- clients ------------------------------------------------------------------------

    def _client(self, numbers: Iterator[int], apis: list[str]) -> None:
        with httpx.Client(timeout=30) as http:
            while not self._stop.is_set():
                with self._lock:
                    number = next(numbers, None)
                if number is None or number >= self.plan.jobs:
                    return
                tenant = self._tenants()[number % self.plan.tenants]
                create = Create(
                    number, tenant, f"chaos job {number} for {tenant}", SECONDS[number % 3]
                )
                with self._lock:
                    self.creates.append(create)
                self._create(http, create, apis, number % len(apis))
                with self._lock:
                    self._submitted += 1
                if create.job_id:
                    self._follow(http, create, apis)

    def _create(self, http: httpx.Client, create: Create, apis: list[str], first: int) -> None:
        """POST until answered; a connection error or a 5xx sends the same Idempotency-Key to
        the other API process."""
        headers = {
            "Authorization": f"Bearer {self.keys[create.tenant]}",
            "Idempotency-Key": f"chaos-{create.number}",
        }
        body = {"prompt": create.prompt, "model": "sora-2", "seconds": create.seconds}
        deadline = time.monotonic() + 120
        for attempt in itertools.count():
            create.attempts = attempt + 1
            api = apis[(first + attempt) % len(apis)]
            try:
                answer = http.post(f"{api}/v1/videos", headers=headers, json=body)
            except httpx.TransportError:
                answer = None
            if answer is not None and answer.status_code < 500:
                if answer.status_code == 200:
                    create.job_id = answer.json()["id"]
                elif answer.status_code == 429 and "insufficient_quota" in answer.text:
                    create.refused = True
                else:
                    create.problem = f"{answer.status_code} {answer.text[:200]}"
                return
            if time.monotonic() > deadline:
                create.problem = "no API process answered for 120 s"
                return
            time.sleep(0.2)

    def _follow(self, http: httpx.Client, create: Create, apis: list[str]) -> None:
        """Poll the job (either API process) to its end, as `create_and_poll` does."""
        headers = {"Authorization": f"Bearer {self.keys[create.tenant]}"}
        deadline = time.monotonic() + self.plan.drain_timeout_s
        for attempt in itertools.count():
            if self._stop.is_set() or time.monotonic() > deadline:
                return
            with contextlib.suppress(httpx.TransportError):
                answer = http.get(
                    f"{apis[attempt % len(apis)]}/v1/videos/{create.job_id}", headers=headers
                )
                if answer.status_code == 200 and answer.json()["status"] in TERMINAL:
                    create.status = answer.json()["status"]
                    return
            time.sleep(0.3)

    # -- chaos --------------------------------------------------------------------------

    def _kill_schedule(self) -> list[tuple[float, str]]:
        """(share of creates sent, process) for every kill, spread over the run."""
        victims = [f"worker-{1 + index % 2}" for index in range(self.plan.worker_kills)]
        for index in range(self.plan.api_kills):
            victims.insert(1 + 2 * index, f"api-{1 + index % 2}")
        return [((index + 1) / (len(victims) + 1), name) for index, name in enumerate(victims)]

    def _chaos(self) -> None:
        try:
            self._inflict()
        except Exception as error:  # the run goes on without the kills left; reported
            self.chaos_error = f"chaos: {error!r}"

    def _inflict(self) -> None:
        schedule = self._kill_schedule()
        next_fault = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() >= next_fault:
                next_fault += self.plan.fault_every_s
                self.upstream.submit_500s = 2
                self.upstream.submit_429s = 1
                self.upstream.poll_429s = 2
                self.upstream.content_404s = 1
            if schedule and self._submitted >= schedule[0][0] * self.plan.jobs:
                _, victim = schedule.pop(0)
                asyncio.run(self._kill_counted(victim))
                self.cluster.start()
                self._note_started(victim)
            self._sample_memory()
            self._stop.wait(0.25)

    async def _kill_counted(self, name: str) -> None:
        """SIGKILL `name` while no job can be accepted or finished, its counters scraped
        after the last commit it made: they are its incarnation's final count."""
        incarnation = self.incarnations.pop(name)
        connection = await asyncpg.connect(self.cluster.dsn)
        try:
            async with connection.transaction():
                await connection.execute("LOCK TABLE jobs IN EXCLUSIVE MODE")
                await asyncio.sleep(SETTLE_S)
                incarnation.final = await asyncio.to_thread(
                    scrape, self.cluster.metrics_urls()[name]
                )
                self._sample_memory()
                os.killpg(incarnation.pid, signal.SIGKILL)
                incarnation.killed = time.monotonic()
        finally:
            await connection.close()
        self.dead.append(incarnation)
        self.kills.append(name)

    def _sample_memory(self) -> None:
        for incarnation in list(self.incarnations.values()):
            rss, hwm = memory_kb(incarnation.pid)
            incarnation.peak_rss_kb = max(incarnation.peak_rss_kb, rss, hwm)

    # -- the whole run ------------------------------------------------------------------

    def run(self) -> ChaosOutcome:
        """Set up, create every job under chaos, drain, and read what became of everything.
        The caller stops the cluster (`self.cluster.stop()`) whatever happens."""
        with self.upstream_and_receiver() as (upstream_url, receiver_url):
            config = self.channel_config(self.cluster.run_dir / "vidrelay.toml", upstream_url)
            self.cluster.settings["VIDRELAY_CONFIG"] = str(config)
            self.set_up(receiver_url)
            apis = self.cluster.api_urls()
            numbers = itertools.count()
            started = time.monotonic()
            chaos = threading.Thread(target=self._chaos, name="chaos", daemon=True)
            clients = [
                threading.Thread(target=self._client, args=(numbers, apis), daemon=True)
                for _ in range(self.plan.clients)
            ]
            chaos.start()
            for client in clients:
                client.start()
            try:
                for client in clients:
                    client.join(self.plan.drain_timeout_s + 180)
                drain_s = self._drain(started)
                while chaos.is_alive() and self._kills_left():
                    time.sleep(0.5)  # a kill not reached (too few creates) is not waited for
            finally:
                self._stop.set()
                chaos.join(120)
            self._wait_for_webhooks()
            return self._outcome(drain_s)

    def _kills_left(self) -> bool:
        wanted = self.plan.worker_kills + self.plan.api_kills
        return self.chaos_error is None and len(self.kills) < wanted

    def _drain(self, started: float) -> float | None:
        """Seconds from the first create until no job is queued or running; None on timeout."""
        deadline = time.monotonic() + self.plan.drain_timeout_s
        while time.monotonic() < deadline:
            running = asyncio.run(
                self._fetch_value(
                    "SELECT count(*) FROM jobs WHERE status NOT IN ('completed', 'failed')"
                )
            )
            if running == 0 and not self._kills_left():
                return time.monotonic() - started
            time.sleep(0.5)
        return None

    def _wait_for_webhooks(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pending = asyncio.run(
                self._fetch_value(
                    "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'"
                )
            )
            if pending == 0:
                return
            time.sleep(0.5)

    async def _fetch_value(self, query: str) -> Any:
        connection = await asyncpg.connect(self.cluster.dsn)
        try:
            return await connection.fetchval(query)
        finally:
            await connection.close()

    async def _read_database(
        self,
    ) -> tuple[list[asyncpg.Record], list[asyncpg.Record], list[asyncpg.Record]]:
        connection = await asyncpg.connect(self.cluster.dsn)
        try:
            jobs = await connection.fetch(
                "SELECT j.id, j.status, j.prompt, j.seconds, j.price_micros, "
                "j.orphaned_submissions, t.name AS tenant FROM jobs j JOIN tenants t "
                "ON t.id = j.tenant_id"
            )
            ledger = await connection.fetch(
                "SELECT l.job_id, l.kind, l.amount_micros, t.name AS tenant "
                "FROM ledger_entries l JOIN tenants t ON t.id = l.tenant_id ORDER BY l.id"
            )
            tenants = await connection.fetch("SELECT name, balance_micros FROM tenants")
            return jobs, ledger, tenants
        finally:
            await connection.close()

    def _outcome(self, drain_s: float | None) -> ChaosOutcome:
        self._sample_memory()
        job_rows, ledger_rows, tenant_rows = asyncio.run(self._read_database())
        jobs = {row["id"]: dict(row) for row in job_rows}
        ledger: dict[str, list[tuple[str, int]]] = {}
        tenants: dict[str, dict[str, int]] = {
            row["name"]: {
                "balance_micros": row["balance_micros"],
                "ledger_micros": 0,
                "top_ups_micros": 0,
            }
            for row in tenant_rows
        }
        for row in ledger_rows:
            figures = tenants[row["tenant"]]
            figures["ledger_micros"] += row["amount_micros"]
            if row["kind"] == "top_up":
                figures["top_ups_micros"] += row["amount_micros"]
            if row["job_id"]:
                ledger.setdefault(row["job_id"], []).append((row["kind"], row["amount_micros"]))
        for name, figures in tenants.items():
            # a client's price is sora-2's built-in $0.10/s; a job charged otherwise shows here
            spent = sum(
                PRICE_PER_SECOND_MICROS * int(create.seconds)
                for create in self.creates
                if create.tenant == name
                and create.job_id
                and jobs.get(create.job_id, {}).get("status") != "failed"
            )
            figures["expected_micros"] = figures["top_ups_micros"] - spent
        by_prompt = Counter(job.prompt for job in self.upstream.jobs.values())
        duplicates = {
            job_id: by_prompt[job["prompt"]] - 1
            for job_id, job in jobs.items()
            if by_prompt[job["prompt"]] > 1
        }
        return ChaosOutcome(
            plan=self.plan,
            media=self.cluster.shared["CLUSTER_MEDIA"],
            creates=sorted(self.creates, key=lambda create: create.number),
            jobs=jobs,
            ledger=ledger,
            tenants=tenants,
            downloads_wrong=self._check_downloads(jobs),
            webhooks_missing=self._missing_webhooks(jobs),
            bad_signatures=self.receiver.bad_signatures,
            metrics_problems=self._check_metrics(jobs, ledger_rows),
            duplicates=duplicates,
            drain_s=drain_s,
            incarnations=[*self.dead, *self.incarnations.values()],
            kills=list(self.kills),
            chaos_error=self.chaos_error,
        )

    def _check_downloads(self, jobs: dict[str, dict[str, Any]]) -> list[str]:
        """Every completed video, from every API process: the upstream's bytes for its prompt."""
        wrong: list[str] = []
        with httpx.Client(timeout=30) as http:
            for job_id, job in jobs.items():
                if job["status"] != "completed":
                    continue
                headers = {"Authorization": f"Bearer {self.keys[job['tenant']]}"}
                for api in self.cluster.api_urls():
                    answer = http.get(f"{api}/v1/videos/{job_id}/content", headers=headers)
                    if answer.status_code != 200 or answer.content != tagged_mp4(job["prompt"]):
                        wrong.append(f"{job_id} from {api}: {answer.status_code}")
        return wrong

    def _missing_webhooks(self, jobs: dict[str, dict[str, Any]]) -> list[str]:
        return [
            job_id
            for job_id, job in jobs.items()
            if job["status"] in TERMINAL
            and (f"video.{job['status']}", job_id)
            not in self.receiver.events.get(job["tenant"], set())
        ]

    def _check_metrics(
        self, jobs: dict[str, dict[str, Any]], ledger_rows: list[asyncpg.Record]
    ) -> list[str]:
        """Every live process's database gauges equal the database; the counters of every
        incarnation, the dead ones' final counts included, add up to the database's."""
        problems: list[str] = []
        ledger_by_kind: Counter[str] = Counter()
        for row in ledger_rows:
            ledger_by_kind[row["kind"]] += row["amount_micros"]
        finals = {
            incarnation.name + f"#{incarnation.pid}": incarnation.final for incarnation in self.dead
        }
        for name, url in self.cluster.metrics_urls().items():
            figures = scrape(url)
            finals[f"{name}#{self.incarnations[name].pid}"] = figures
            gauges = {
                labels.removeprefix("kind="): round(value * 1_000_000)
                for labels, value in figures.get("vidrelay_ledger_usd_total", {}).items()
            }
            if gauges != dict(ledger_by_kind):
                problems.append(
                    f"{name}: ledger gauges {gauges} != database {dict(ledger_by_kind)}"
                )
            if name.startswith("worker"):
                depth = figures.get("vidrelay_queue_depth", {}).get("")
                in_flight = sum(figures.get("vidrelay_jobs_in_flight", {}).values())
                if depth != 0 or in_flight != 0:
                    problems.append(
                        f"{name}: queue depth {depth}, in flight {in_flight} after drain"
                    )
        accepted = sum(
            sum(by_label(figures, "vidrelay_jobs_accepted_total", "model").values())
            for figures in finals.values()
        )
        if accepted != len(jobs):
            problems.append(
                f"jobs accepted: {accepted} counted by the API processes, "
                f"{len(jobs)} in the database"
            )
        finished: Counter[str] = Counter()
        for figures in finals.values():
            finished.update(by_label(figures, "vidrelay_jobs_finished_total", "outcome"))
        in_database = Counter(job["status"] for job in jobs.values())
        if +finished != +in_database:
            problems.append(
                f"jobs finished: counted {dict(finished)}, database {dict(in_database)}"
            )
        return problems


def summary(outcome: ChaosOutcome) -> dict[str, Any]:
    """The run's figures, as `bench/chaos.py` prints them and the test reports them."""
    statuses = Counter(job["status"] for job in outcome.jobs.values())
    duplicates = list(outcome.duplicates.values())
    return {
        "media": outcome.media,
        "creates": len(outcome.creates),
        "accepted": len(outcome.accepted),
        "refused_for_balance": sum(create.refused for create in outcome.creates),
        "create_retries": sum(create.attempts - 1 for create in outcome.creates),
        "completed": statuses["completed"],
        "failed": statuses["failed"],
        "lost_jobs": len(outcome.lost_jobs()),
        "wrong_cents": outcome.wrong_cents(),
        "jobs_submitted_twice_or_more": len(duplicates),
        "duplicate_submissions": sum(duplicates),
        "duplicate_submissions_max_per_job": max(duplicates, default=0),
        "orphaned_submissions_counted": sum(
            int(job["orphaned_submissions"] or 0) for job in outcome.jobs.values()
        ),
        "kills": outcome.kills,
        "drain_s": None if outcome.drain_s is None else round(outcome.drain_s, 1),
        "peak_rss_mb": {
            f"{incarnation.name} (pid {incarnation.pid})": round(incarnation.peak_rss_kb / 1024, 1)
            for incarnation in outcome.incarnations
        },
        "problems": outcome.problems(),
    }


def print_summary(outcome: ChaosOutcome) -> None:
    print(json.dumps(summary(outcome), indent=2))


def fresh_seed() -> None:
    """The fake's failures and durations differ per run; print the seed to replay one."""
    seed = int(os.environ.get("CHAOS_SEED", random.randrange(1 << 30)))
    random.seed(seed)
    print(f"chaos seed {seed} (CHAOS_SEED={seed} replays the upstream's draws)")
