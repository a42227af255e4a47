"""Benchmark accepted `POST /v1/videos` submits per second with charging on, against the same
server with charging off, on PostgreSQL; then check for overspend under concurrency.

Two runs, each on a fresh PostgreSQL database and a fresh `vidrelay serve` (one process, free
port, `VIDRELAY_ENGINE=false` so the server only accepts and nothing renders):

  (a) billed    `VIDRELAY_BILLING=true`
  (b) unbilled  `VIDRELAY_BILLING=false`

Each run: a tenant with a balance that never runs out ($1,000,000 = 2.5M jobs at $0.40), a
warm-up, then `--seconds` of C concurrent keep-alive clients POSTing multipart `prompt`,
`seconds=4`, `size=720x1280` (sora-2, $0.40). Only answers received inside the measured window
count; latency percentiles are of the accepted (200) answers.

The load generator is an asyncio raw-socket client in a separate process (uvloop when
installed), not wrk: wrk stops by dropping its connections with requests in flight, and each
request whose client is gone before its body is read ends in an unhandled `ClientDisconnect`
that the server logs with a rich traceback (with locals) on its event loop, blocking it for up
to seconds while another request holds the tenant's row lock; that stalled the next measured
phase. This client stops sending at the deadline and lets every in-flight request finish, so
it also counts exactly how many submits were accepted.

Exhaustion phase (billed server, after its throughput run): a second tenant whose balance pays
for N jobs, about half of what the phase would accept, hammered by C clients for a few seconds.
Then the database is read directly: the balance must be >= 0, equal the initial balance minus
$0.40 x jobs rows, equal the ledger sum, and the client's 200s must equal the jobs rows.

It is a benchmark: it exits 0 whatever the ratio (1 when it cannot run or on overspend).

    python bench/accept.py [--seconds N] [--concurrency C] [--database-url URL]
                           [--declared-models N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from harness import (
    HOST,
    RESPONSE_GRACE_S,
    CannotRun,
    Processes,
    add_declared_models_option,
    create_key,
    declared_catalog,
    free_port,
    percentile,
    run_bench,
    run_python_loadgen,
    tail,
    vidrelay_command,
    wait_until_up,
)

GOAL = 0.70
WARMUP_S = 2.0
EXHAUST_S = 5.0
EXHAUST_MAX_JOBS = 500
EXHAUST_MIN_JOBS = 20
PRICE_MICROS = 400_000  # sora-2, 4 s, 720x1280: $0.40
THROUGHPUT_BALANCE_USD = Decimal("1000000")
POSTGRES_URL_ENV = "VIDRELAY_TEST_POSTGRES_URL"
BOUNDARY = "vidrelay-bench-boundary-7d1f0c"
CONTENT_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
FIELDS = {"prompt": "a paper boat on a rainy street", "seconds": "4", "size": "720x1280"}
NO_POSTGRES = (
    "no PostgreSQL reachable{detail}.\n"
    "Start it and export its admin URL with:  source scripts/services.sh\n"
    f"(or pass --database-url / set {POSTGRES_URL_ENV} to an admin URL such as "
    "postgresql+asyncpg://vidrelay_test:vidrelay_test@127.0.0.1:5432/vidrelay_test)"
)


def multipart_body() -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in FIELDS.items()
    ]
    return ("".join(parts) + f"--{BOUNDARY}--\r\n").encode()


# --------------------------------------------------------------------------- python load generator


@dataclass
class Load:
    """What one load-generator run saw. The status counts and latencies cover the measured
    window (every answer when there is no warm-up); `total_accepted` counts every 200."""

    seconds: float
    accepted: int = 0
    quota_429: int = 0
    other_429: int = 0
    other: dict[str, int] = field(default_factory=dict)
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")
    sent: int = 0
    answered: int = 0
    total_accepted: int = 0
    timeouts: int = 0
    errors: int = 0
    error_sample: str = ""

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.seconds else float("nan")

    @property
    def non_200(self) -> int:
        return self.quota_429 + self.other_429 + sum(self.other.values())

    @property
    def exact(self) -> bool:
        """Every request sent was answered, so `total_accepted` is what the server accepted."""
        return self.sent == self.answered and not self.timeouts and not self.errors


def loadgen(port: int, auth: str, concurrency: int, seconds: float, warmup_s: float) -> None:
    """The load-generator process: submit until the deadline, print what it saw as JSON."""
    body = multipart_body()
    request = (
        f"POST /v1/videos HTTP/1.1\r\nHost: {HOST}:{port}\r\nAuthorization: {auth}\r\n"
        f"Content-Type: {CONTENT_TYPE}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    tally = run_python_loadgen(
        request, port, concurrency, seconds, warmup_s, marker=b"insufficient_quota"
    )
    # With no warm-up (the exhaustion phase) every answer counts, including those in flight at
    # the deadline; otherwise only those answered inside the measured window.
    measured = tally.measured()
    latencies = sorted(a.latency for a in measured if a.status == 200)
    other: dict[str, int] = {}
    for answer in measured:
        if answer.status not in (200, 429):
            other[str(answer.status)] = other.get(str(answer.status), 0) + 1
    result = {
        "accepted": len(latencies),
        "quota_429": sum(1 for a in measured if a.status == 429 and a.marked),
        "other_429": sum(1 for a in measured if a.status == 429 and not a.marked),
        "other": other,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "sent": tally.sent,
        "answered": len(tally.answers),
        "total_accepted": sum(1 for a in tally.answers if a.status == 200),
        "timeouts": tally.timeouts,
        "errors": len(tally.errors),
        "error_sample": repr(tally.errors[0]) if tally.errors else "",
    }
    print(json.dumps(result), flush=True)


# --------------------------------------------------------------------------- databases


def _asyncpg_dsn(url: Any) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _connect(url: Any, timeout_s: float = 10) -> Any:
    import asyncpg

    return await asyncpg.connect(_asyncpg_dsn(url), timeout=timeout_s)


class Databases:
    """Fresh PostgreSQL databases, one per run, all dropped at the end whatever happens."""

    def __init__(self, admin_url: str) -> None:
        from sqlalchemy.engine import make_url

        self.admin_url = make_url(admin_url).set(drivername="postgresql+asyncpg")
        self._created: list[str] = []

    @property
    def shown(self) -> str:
        return self.admin_url.render_as_string(hide_password=True)

    def check_reachable(self) -> None:
        async def probe() -> None:
            connection = await _connect(self.admin_url, timeout_s=5)
            await connection.close()

        try:
            asyncio.run(probe())
        except Exception as error:  # refused, timed out, bad password, no such database...
            raise CannotRun(NO_POSTGRES.format(detail=f" at {self.shown} ({error})")) from error

    def _admin(self, sql: str) -> None:
        async def run() -> None:
            connection = await _connect(self.admin_url)
            try:
                await connection.execute(sql)
            finally:
                await connection.close()

        asyncio.run(run())

    def create(self) -> str:
        name = "vr_bench_" + secrets.token_hex(6)
        self._created.append(name)
        self._admin(f'CREATE DATABASE "{name}"')
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        from sqlalchemy.engine import make_url

        name = make_url(url).database
        if name in self._created:
            self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self._created.remove(name)

    def drop_all(self) -> None:
        for name in list(self._created):
            try:
                self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                self._created.remove(name)
            except Exception as error:  # keep dropping the others
                print(f"could not drop database {name}: {error}", file=sys.stderr)


@dataclass
class Audit:
    tenant: str
    initial_micros: int
    balance_micros: int
    ledger_micros: int
    job_rows: int
    job_price_micros: int
    charge_entries: int
    key_spent_micros: int
    keys_with_spend_limit: int


def audit_tenant(database_url: str, tenant: str, initial_micros: int) -> Audit:
    """The tenant's money and jobs, read straight from the database."""

    async def run() -> Audit:
        connection = await _connect(database_url)
        try:
            row = await connection.fetchrow(
                "SELECT id, balance_micros FROM tenants WHERE name = $1", tenant
            )
            if row is None:
                raise CannotRun(f"tenant {tenant!r} not found in the database")
            tenant_id = row["id"]
            jobs = await connection.fetchrow(
                "SELECT count(*) AS n, coalesce(sum(price_micros), 0) AS price "
                "FROM jobs WHERE tenant_id = $1",
                tenant_id,
            )
            ledger = await connection.fetchrow(
                "SELECT coalesce(sum(amount_micros), 0) AS total, "
                "count(*) FILTER (WHERE kind = 'charge') AS charges "
                "FROM ledger_entries WHERE tenant_id = $1",
                tenant_id,
            )
            keys = await connection.fetchrow(
                "SELECT coalesce(sum(spent_micros), 0) AS spent, count(spend_limit_micros) AS"
                " limited FROM api_keys WHERE tenant_id = $1",
                tenant_id,
            )
            return Audit(
                tenant=tenant,
                initial_micros=initial_micros,
                balance_micros=int(row["balance_micros"]),
                ledger_micros=int(ledger["total"]),
                job_rows=int(jobs["n"]),
                job_price_micros=int(jobs["price"]),
                charge_entries=int(ledger["charges"]),
                key_spent_micros=int(keys["spent"]),
                keys_with_spend_limit=int(keys["limited"]),
            )
        finally:
            await connection.close()

    return asyncio.run(run())


def billed_problems(audit: Audit) -> list[str]:
    """Every way a billed tenant's money disagrees with its jobs."""
    problems: list[str] = []
    expected = audit.initial_micros - PRICE_MICROS * audit.job_rows
    if audit.balance_micros < 0:
        problems.append(f"balance is negative: {audit.balance_micros} micros")
    if audit.balance_micros != expected:
        problems.append(
            f"balance {audit.balance_micros} != initial {audit.initial_micros} - "
            f"{PRICE_MICROS} x {audit.job_rows} jobs = {expected}"
        )
    if audit.balance_micros != audit.ledger_micros:
        problems.append(f"balance {audit.balance_micros} != ledger sum {audit.ledger_micros}")
    if audit.job_price_micros != PRICE_MICROS * audit.job_rows:
        problems.append(
            f"jobs' price_micros sum to {audit.job_price_micros}, "
            f"not {PRICE_MICROS} x {audit.job_rows}"
        )
    if audit.charge_entries != audit.job_rows:
        problems.append(f"{audit.charge_entries} charge entries for {audit.job_rows} jobs")
    # a key's spend is tracked only when it has a spending limit
    expected_spent = audit.job_price_micros if audit.keys_with_spend_limit else 0
    if audit.key_spent_micros != expected_spent:
        problems.append(f"key spent_micros {audit.key_spent_micros} != expected {expected_spent}")
    return problems


# --------------------------------------------------------------------------- orchestration


@dataclass
class RunResult:
    name: str
    load: Load
    audit: Audit
    server_errors: int
    exhaust_load: Load | None = None
    exhaust_audit: Audit | None = None
    exhaust_jobs: int = 0


class Bench:
    def __init__(self, args: argparse.Namespace, processes: Processes, dbs: Databases) -> None:
        self.args = args
        self.processes = processes
        self.dbs = dbs

    def env(self, work: Path, database_url: str, billing: bool) -> dict[str, str]:
        # Only the settings chosen here: no inherited VIDRELAY_* (a Redis URL, a config file...).
        env = {k: v for k, v in os.environ.items() if not k.startswith("VIDRELAY_")}
        env.update(
            VIDRELAY_DATABASE_URL=database_url,
            VIDRELAY_DATA_DIR=str(work / "data"),
            VIDRELAY_BILLING="true" if billing else "false",
            VIDRELAY_ENGINE="false",
        )
        if self.args.declared_models:
            catalog = declared_catalog(work / "vidrelay.toml", self.args.declared_models)
            env["VIDRELAY_CONFIG"] = str(catalog)
        return env

    def start_server(self, env: dict[str, str], log_path: Path) -> tuple[int, Any]:
        port = free_port()
        argv = [*vidrelay_command(), "serve", "--host", HOST, "--port", str(port)]
        server = self.processes.start_logged(argv, env, log_path)
        wait_until_up(f"http://{HOST}:{port}/healthz", server, log_path)
        return port, server

    def smoke(self, port: int, key: str, log_path: Path) -> None:
        """One submit before the load, so a broken request fails loudly."""
        import httpx

        response = httpx.post(
            f"http://{HOST}:{port}/v1/videos",
            headers={"Authorization": f"Bearer {key}", "Content-Type": CONTENT_TYPE},
            content=multipart_body(),
            timeout=30,
        )
        if response.status_code != 200:
            raise CannotRun(
                f"a single submit failed: {response.status_code} {response.text}\n{tail(log_path)}"
            )

    def load(self, port: int, key: str, seconds: float, warmup_s: float) -> Load:
        argv = [
            sys.executable,
            __file__,
            *("--loadgen-port", str(port), "--loadgen-auth", f"Bearer {key}"),
            *("--loadgen-warmup", str(warmup_s), "--loadgen-seconds", str(seconds)),
            *("--concurrency", str(self.args.concurrency)),
        ]
        process = self.processes.start(argv, stdout=subprocess.PIPE, text=True)
        try:
            output, _ = process.communicate(timeout=warmup_s + seconds + RESPONSE_GRACE_S + 20)
        finally:
            self.processes.stop(process)
        if process.returncode != 0 or not output.strip():
            raise CannotRun(f"load generator failed ({process.returncode}):\n{output}")
        values = json.loads(output.strip().splitlines()[-1])
        return Load(seconds=seconds, **values)

    def run(self, work: Path, billing: bool) -> RunResult:
        name = "billed" if billing else "unbilled"
        run_dir = work / name
        run_dir.mkdir()
        database_url = self.dbs.create()
        env = self.env(run_dir, database_url, billing)
        key = create_key(env, "bench", THROUGHPUT_BALANCE_USD)
        log_path = run_dir / "server.log"
        port, server = self.start_server(env, log_path)
        self.smoke(port, key, log_path)
        load = self.load(port, key, self.args.seconds, WARMUP_S)
        print(
            f"  {name}: {load.rate:,.0f} accepted/s, {load.non_200} non-200, "
            f"{load.timeouts} timeouts, {load.errors} connection errors",
            flush=True,
        )
        initial = int(THROUGHPUT_BALANCE_USD * 1_000_000)
        audit = audit_tenant(database_url, "bench", initial)
        result = RunResult(name, load, audit, server_errors=0)
        if billing:
            self.exhaust(result, env, port, database_url)
        self.processes.stop(server)
        result.server_errors = log_path.read_text(errors="replace").count("unhandled_error")
        self.dbs.drop(database_url)
        return result

    def exhaust(self, result: RunResult, env: dict[str, str], port: int, database_url: str) -> None:
        # A balance the phase runs through partway: at the measured rate it lasts about half of
        # the phase (at most EXHAUST_MAX_JOBS jobs).
        per_phase = result.load.rate * EXHAUST_S
        n_jobs = int(min(EXHAUST_MAX_JOBS, max(EXHAUST_MIN_JOBS, per_phase / 2)))
        balance_usd = Decimal(n_jobs) * Decimal(PRICE_MICROS) / Decimal(1_000_000)
        key = create_key(env, "bench-exhaust", balance_usd)
        load = self.load(port, key, EXHAUST_S, 0)
        result.exhaust_jobs = n_jobs
        result.exhaust_load = load
        result.exhaust_audit = audit_tenant(database_url, "bench-exhaust", n_jobs * PRICE_MICROS)
        print(
            f"  exhaustion: balance for {n_jobs} jobs; {load.accepted} accepted, "
            f"{load.quota_429} insufficient_quota",
            flush=True,
        )


def describe(args: argparse.Namespace, dbs: Databases) -> None:
    print(
        "vidrelay accept benchmark: POST /v1/videos multipart (prompt, seconds=4, size=720x1280;"
        f" sora-2 = ${PRICE_MICROS / 1e6:.2f})\n"
        f"  python {platform.python_version()}, {os.cpu_count()} CPUs shared by the server, "
        "PostgreSQL and the client\n"
        f"  PostgreSQL via {dbs.shown}: a fresh vr_bench_* database per run, dropped afterwards\n"
        "  server: `vidrelay serve` (one process), VIDRELAY_ENGINE=false (accept only); "
        "run (a) VIDRELAY_BILLING=true, (b) VIDRELAY_BILLING=false\n"
        f"  throughput: tenant balance ${THROUGHPUT_BALANCE_USD:,} (never runs out); python "
        f"asyncio keep-alive client, {args.concurrency} connections; {WARMUP_S:.0f} s warm-up + "
        f"{args.seconds} s measured; catalog: the seed's 2 models + {args.declared_models} "
        "declared\n"
        f"  overspend: on the billed server, a 2nd tenant with a balance worth N jobs "
        f"(about half of what {EXHAUST_S:.0f} s accept, N <= {EXHAUST_MAX_JOBS}), "
        f"{args.concurrency} clients for {EXHAUST_S:.0f} s, every answer counted;\n"
        "  then tenants, jobs, ledger_entries and api_keys are read with asyncpg\n",
        flush=True,
    )


def report(results: list[RunResult]) -> bool:
    """Print the table and the verdicts; True when there is no overspend or inconsistency."""
    billed, unbilled = results
    print(f"\n{'run':<10} {'accepted/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'non-200':>8}")
    for r in results:
        load = r.load
        print(
            f"{r.name:<10} {load.rate:>11,.0f} {load.p50_ms:>8.2f} {load.p99_ms:>8.2f} "
            f"{load.non_200:>8}"
        )
    for r in results:
        if r.load.non_200 or r.load.timeouts or r.load.errors:
            print(
                f"warning: {r.name}: {r.load.quota_429} insufficient_quota, "
                f"{r.load.other_429} other 429, other statuses {r.load.other or 'none'}, "
                f"{r.load.timeouts} timeouts, {r.load.errors} connection errors "
                f"{r.load.error_sample}; the numbers are suspect"
            )
        if r.server_errors:
            print(f"warning: {r.name}: the server logged {r.server_errors} unhandled errors")
    ratio = billed.load.rate / unbilled.load.rate if unbilled.load.rate else float("nan")
    print(
        f"\nratio billed/unbilled = {ratio:.2f} (goal: ledger costs under 30% of throughput, "
        f"i.e. ratio >= {GOAL:.2f}): {'met' if ratio >= GOAL else 'NOT met'} "
        f"({billed.load.rate:,.1f} / {unbilled.load.rate:,.1f} = {ratio:.3f})"
    )

    problems: list[str] = []
    exhaust, audit = billed.exhaust_load, billed.exhaust_audit
    assert exhaust is not None and audit is not None
    for checked in (billed.audit, audit):
        problems += [f"{checked.tenant}: {p}" for p in billed_problems(checked)]
    if unbilled.audit.balance_micros != unbilled.audit.initial_micros:
        problems.append(f"unbilled run: the balance changed to {unbilled.audit.balance_micros}")
    if unbilled.audit.job_price_micros:
        problems.append(f"unbilled run: jobs were priced {unbilled.audit.job_price_micros}")
    # Both clients let in-flight requests finish, so their counts of 200s are exact.
    for tenant, load, rows, smoke in (
        ("bench", billed.load, billed.audit.job_rows, 1),
        ("bench-exhaust", exhaust, audit.job_rows, 0),
    ):
        if not load.exact:
            problems.append(f"{tenant}: requests went unanswered, the client count is not exact")
        elif load.total_accepted + smoke != rows:
            problems.append(
                f"{tenant}: the client counted {load.total_accepted + smoke} accepted but "
                f"{rows} jobs rows exist"
            )

    print(
        f"\nexhaustion phase ({EXHAUST_S:.0f} s, balance ${audit.initial_micros / 1e6:,.2f} = "
        f"{billed.exhaust_jobs} jobs): the client saw {exhaust.accepted} x 200, "
        f"{exhaust.quota_429} x 429 insufficient_quota, {exhaust.other_429} x other 429, "
        f"other statuses {exhaust.other or 'none'}"
    )
    print(
        f"  database: {audit.job_rows} jobs rows, balance {audit.balance_micros} micros, "
        f"ledger sum {audit.ledger_micros}, {audit.charge_entries} charge entries, "
        f"key spent {audit.key_spent_micros}"
    )
    print(
        f"  throughput tenant (billed run): {billed.audit.job_rows} jobs rows = "
        f"{billed.load.total_accepted} accepted (warm-up and measured) + 1 smoke submit; "
        f"balance {billed.audit.balance_micros} = ledger sum {billed.audit.ledger_micros}"
        if billed.audit.balance_micros == billed.audit.ledger_micros
        else "  throughput tenant (billed run): see the discrepancies below"
    )
    inconclusive = ""
    if exhaust.quota_429 == 0 or audit.balance_micros >= PRICE_MICROS:
        inconclusive = " (inconclusive: the balance was not exhausted during the phase)"
    if problems:
        print("overspend: DISCREPANCY")
        for problem in problems:
            print(f"  - {problem}")
        return False
    print(f"overspend: none{inconclusive}")
    return True


def bench(args: argparse.Namespace, processes: Processes) -> bool:
    admin_url = args.database_url or os.environ.get(POSTGRES_URL_ENV)
    if not admin_url:
        detail = f" (neither --database-url nor {POSTGRES_URL_ENV} is set)"
        raise CannotRun(NO_POSTGRES.format(detail=detail))
    dbs = Databases(admin_url)
    dbs.check_reachable()
    describe(args, dbs)
    runner = Bench(args, processes, dbs)
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(
            prefix="vidrelay-accept-", ignore_cleanup_errors=True
        ) as tmp:
            try:
                results = [runner.run(Path(tmp), billing) for billing in (True, False)]
            finally:
                processes.stop_all()  # before the databases and the data dir go
    finally:
        dbs.drop_all()
    ok = report(results)
    print(f"\ntotal time {time.monotonic() - started:.0f} s")
    return ok


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python bench/accept.py",
        description=(
            "Accepted POST /v1/videos per second with charging on vs off (PostgreSQL, "
            "accept-only server), and an overspend check under concurrency."
        ),
    )
    parser.add_argument(
        "--seconds", type=int, default=10, metavar="N", help="measured seconds per run (default 10)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=32, metavar="C", help="concurrent clients (default 32)"
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help=f"PostgreSQL admin URL (default: ${POSTGRES_URL_ENV}, set by scripts/services.sh)",
    )
    add_declared_models_option(parser)
    # Internal mode: the script re-runs itself as the load generator.
    parser.add_argument("--loadgen-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--loadgen-auth", help=argparse.SUPPRESS)
    parser.add_argument("--loadgen-seconds", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--loadgen-warmup", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seconds < 1 or args.concurrency < 1:
        parser.error("--seconds and --concurrency must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.loadgen_port is not None:
        loadgen(
            args.loadgen_port,
            args.loadgen_auth,
            args.concurrency,
            args.loadgen_seconds,
            args.loadgen_warmup,
        )
        return 0

    return run_bench(bench, args, "servers stopped, databases dropped")


if __name__ == "__main__":
    sys.exit(main())
