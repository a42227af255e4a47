"""Benchmark the web console's pages on a big instance: p50/p95 render time per page, on SQLite
and on PostgreSQL.

Usage: python bench/console.py [--jobs 100000] [--tenants 10000] [--samples 40]
                               [--backends sqlite,postgresql]

Setup, per backend: a fresh database (SQLite in a temporary directory; PostgreSQL: a new
database on the server of `VIDRELAY_TEST_POSTGRES_URL`, from `scripts/services.sh`, dropped
afterwards) migrated to head, then seeded directly through SQL in bulk: `--tenants` tenants
(one in ten under $1), `--jobs` jobs spread over the last 30 days (89% completed, 10% failed,
0.5% running, which is what 6 channels of 100 slots hold, 0.5% queued) on 6 channels, with
prices, upstream costs and completion times, and their timeline events (accepted, submitted,
then completed or failed: 3 a finished job), and 5,000 webhook deliveries (one in ten
failing). Then `ANALYZE` (PostgreSQL: `VACUUM ANALYZE`, as autovacuum would).

Run: the app in this process with its engine off (`VIDRELAY_ENGINE=false`: nothing but the
pages runs), an operator signed in through the form over an in-process ASGI transport; each
page is fetched 3 times to warm up, then `--samples` times, timed from the request to the last
byte of the answer (so the figure is the server's whole work for the page: routing, session,
queries and template, without a network), with this process's CPU time beside it (its
threads': SQLite's work, not PostgreSQL's server) since other processes sharing the cores
inflate wall time, not CPU time. Goal: p95 under 100 ms for every page.
Exits 0 when every page meets it, 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import random
import re
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

if importlib.util.find_spec("vidrelay") is None:  # running from a checkout, not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import asyncpg
import httpx
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url

from vidrelay.api.app import create_app
from vidrelay.domain.catalog import RouteClass
from vidrelay.domain.channels import Channel, ChannelProtocol
from vidrelay.settings import Settings
from vidrelay.store import channels as channel_store
from vidrelay.store.database import Database
from vidrelay.store.tables import job_events, jobs, tenants, webhook_deliveries, webhook_events

GOAL_MS = 100.0
ADMIN_TOKEN = "bench-admin-token"
DAY_S = 86_400
CHUNK = 5_000
CHANNELS = [f"upstream-{n}" for n in range(6)]
PAGES = [
    "/console/sign-in",
    "/console",
    "/console/channels",
    f"/console/channels/{CHANNELS[0]}",
    "/console/models",
    "/console/attention/tenants",
    "/console/attention/deliveries",
    "/console/jobs",
    "/console/jobs?tenant=tenant%207",
    "/console/jobs?status=failed",
    f"/console/jobs?channel={CHANNELS[1]}&model=sora-2",
    "/console/jobs/video_00000042",
    "/console/tenants",
    "/console/tenants?prefix=tenant%2099",
    "/console/tenants/tenant%207",
    "/console/webhooks",
    "/console/webhooks?status=failed",
    "/console/webhooks/dlv_000010",
    "/console/audit",
]
POSTGRES_URL_ENV = "VIDRELAY_TEST_POSTGRES_URL"


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@asynccontextmanager
async def database_url(backend: str) -> AsyncIterator[str]:
    """A fresh, empty database of the backend; dropped (or deleted) afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite+aiosqlite:///{Path(directory) / 'bench.db'}"
        return
    server = os.environ.get(POSTGRES_URL_ENV)
    if not server:
        raise SystemExit(f"{POSTGRES_URL_ENV} is not set: source scripts/services.sh first")
    dsn = make_url(server).set(drivername="postgresql").render_as_string(hide_password=False)
    name = "vr_bench_" + secrets.token_hex(4)
    admin = await asyncpg.connect(dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def seed(db: Database, job_count: int, tenant_count: int, rng: random.Random) -> None:
    now = int(time.time())
    async with db.write() as conn:
        for name in CHANNELS:
            await channel_store.save_channel(
                conn,
                Channel(
                    name=name,
                    protocol=ChannelProtocol.OPENAI,
                    route_class=RouteClass.OFFICIAL,
                    models=("sora-2", "sora-2-pro"),
                    base_url="https://upstream.invalid",
                    keys=(f"sk-bench-{name}-0001", f"sk-bench-{name}-0002"),
                    max_concurrency=100,
                ),
            )
        tenant_rows = [
            {
                "id": f"ten_{n:06d}",
                "name": f"tenant {n}",
                "balance_micros": rng.randrange(0, 999_999)
                if n % 10 == 0
                else rng.randrange(1_000_000, 500_000_000),
                "created_at": now - 60 * DAY_S,
                "group_name": "default",
            }
            for n in range(tenant_count)
        ]
        for start in range(0, len(tenant_rows), CHUNK):
            await conn.execute(insert(tenants), tenant_rows[start : start + CHUNK])
    # in flight: what 6 channels of 100 slots hold (0.5%), as many queued; the rest finished
    statuses = ["completed"] * 178 + ["failed"] * 20 + ["queued"] + ["in_progress"]
    for start in range(0, job_count, CHUNK):
        rows, events = [], []
        for n in range(start, min(job_count, start + CHUNK)):
            created = now - rng.randrange(30 * DAY_S)
            status = rng.choice(statuses)
            finished = created + rng.uniform(20, 300) if status in ("completed", "failed") else None
            rows.append(
                {
                    "id": f"video_{n:08d}",
                    "created_ts": created + 0.5,
                    "tenant_id": f"ten_{rng.randrange(tenant_count):06d}",
                    "key_id": "key_bench",
                    "model": "sora-2",
                    "route_class": "official",
                    "seconds": "4",
                    "size": "720x1280",
                    "prompt": f"bench prompt {n}",
                    "has_reference": 0,
                    "price_micros": 400_000,
                    "status": status,
                    "progress": 100 if status == "completed" else 0,
                    "created_at": created,
                    "attempts": 1,
                    "channel": rng.choice(CHANNELS) if status != "queued" else None,
                    "cost_micros": 250_000 if status == "completed" else None,
                    "finished_ts": finished,
                    "completed_at": int(finished) if finished else None,
                }
            )
            steps = [("accepted", created + 0.5), ("submitted", created + 1.0)]
            if finished is not None:
                steps.append((status, finished))
            events.extend(
                {"job_id": f"video_{n:08d}", "at": at, "kind": kind, "details": "{}"}
                for kind, at in steps[: 2 if status != "queued" else 1] + steps[2:]
            )
        async with db.write() as conn:
            await conn.execute(insert(jobs), rows)
            await conn.execute(insert(job_events), events)
    events, deliveries = [], []  # webhook events and their deliveries
    for n in range(5_000):
        created = now - rng.randrange(14 * DAY_S)
        events.append(
            {
                "id": f"evt_{n:06d}",
                "tenant_id": f"ten_{rng.randrange(tenant_count):06d}",
                "type": "video.completed",
                "job_id": f"video_{n:08d}",
                "created_at": created,
            }
        )
        failing = n % 10 == 0
        deliveries.append(
            {
                "id": f"dlv_{n:06d}",
                "event_id": f"evt_{n:06d}",
                "tenant_id": events[-1]["tenant_id"],
                "url": f"https://hooks.example/{n}",
                "status": "failed" if failing else "delivered",
                "attempts": 8 if failing else 1,
                "last_status_code": 500 if failing else 200,
                "last_error": "HTTP 500" if failing else None,
                "created_at": created,
            }
        )
    async with db.write() as conn:
        await conn.execute(insert(webhook_events), events)
        await conn.execute(insert(webhook_deliveries), deliveries)
    if not db.is_sqlite:  # autovacuum would; vidrelay never runs SQLite's ANALYZE
        async with db.engine.connect() as conn:
            autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE"))


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


async def measure(url: str, samples: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as directory:
        settings = Settings(
            data_dir=Path(directory),
            database_url=url,
            admin_token=ADMIN_TOKEN,
            engine=False,
            access_log=False,
        )
        app = create_app(settings)
        timings: dict[str, list[float]] = {}
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://console.test"
            ) as client,
        ):
            form = await client.get("/console/sign-in")
            signed = await client.post(
                "/console/sign-in", data={"csrf_token": csrf_of(form.text), "secret": ADMIN_TOKEN}
            )
            assert signed.status_code == 303, signed.text
            for page in PAGES:
                for _ in range(3):
                    answer = await client.get(page)
                    assert answer.status_code == 200, (page, answer.status_code)
                timings[page] = []
                timings[f"{page} cpu"] = []
                for _ in range(samples):
                    started, cpu = time.perf_counter(), time.process_time()
                    answer = await client.get(page)
                    timings[page].append((time.perf_counter() - started) * 1000)
                    timings[f"{page} cpu"].append((time.process_time() - cpu) * 1000)
                    assert answer.status_code == 200, (page, answer.status_code)
        return timings


async def run(backend: str, job_count: int, tenant_count: int, samples: int) -> dict[str, Any]:
    async with database_url(backend) as url:
        db = Database(url)
        await db.upgrade()
        started = time.perf_counter()
        await seed(db, job_count, tenant_count, random.Random(13))
        seeded_s = time.perf_counter() - started
        await db.dispose()
        timings = await measure(url, samples)
    print(f"{backend}: seeded {job_count:,} jobs and {tenant_count:,} tenants in {seeded_s:.1f} s")
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--backends", default="sqlite,postgresql")
    arguments = parser.parse_args()
    backends = arguments.backends.split(",")
    results = {
        backend: asyncio.run(run(backend, arguments.jobs, arguments.tenants, arguments.samples))
        for backend in backends
    }
    header = "".join(f" | {b} p50 ms | {b} p95 ms | {b} CPU p50 ms" for b in backends)
    print(f"\n| page{header} |")
    print("|---" + "|---:" * (3 * len(backends)) + "|")
    failed = []
    for page in PAGES:
        cells = ""
        for backend in backends:
            values = results[backend][page]
            p95 = percentile(values, 0.95)
            cpu = percentile(results[backend][f"{page} cpu"], 0.5)
            cells += f" | {percentile(values, 0.5):.1f} | {p95:.1f} | {cpu:.1f}"
            if p95 >= GOAL_MS:
                failed.append(f"{page} on {backend}")
        print(f"| {page}{cells} |")
    print(
        f"\ngoal: p95 < {GOAL_MS:.0f} ms per page: "
        + ("met" if not failed else "MISSED by " + ", ".join(failed))
    )
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
