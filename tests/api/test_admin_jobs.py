"""`GET /admin/jobs` and `GET /admin/jobs/{id}`: every tenant's jobs under the operator's
filters, newest first, page after page; one job with its timeline. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text, update

from tests.conftest import ADMIN_TOKEN, admin, make_settings
from vidrelay.api.app import create_app
from vidrelay.api.context import AppContext
from vidrelay.domain.catalog import DEFAULT_CATALOG, normalise_request
from vidrelay.domain.jobs import JobStatus, new_video_id
from vidrelay.settings import Settings
from vidrelay.store import accounts
from vidrelay.store import jobs as job_store
from vidrelay.store.tables import jobs

T0 = 1_800_000_000


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "data", database_url, admin_token=ADMIN_TOKEN, engine=False)


async def seed(app: FastAPI, count: int = 12) -> list[dict[str, Any]]:
    """`count` jobs of alice and bob, ten seconds apart, over two models, two channels and
    three statuses; returns what each should list as."""
    context: AppContext = app.state.context
    seeded: list[dict[str, Any]] = []
    async with context.db.write() as conn:
        tenants = {name: await accounts.ensure_tenant(conn, name) for name in ("alice", "bob")}
        for tenant in tenants.values():
            await accounts.top_up(conn, tenant.id, 100_000_000, "test")
        key_ids = {name: (await accounts.create_key(conn, t.id))[0] for name, t in tenants.items()}
    for i in range(count):
        tenant = "bob" if i % 3 == 0 else "alice"
        model, seconds = ("sora-2-pro", "10") if i % 4 == 0 else ("sora-2", "4")
        job = {
            "id": new_video_id(),
            "tenant": tenant,
            "model": model,
            "channel": "vendor-a" if i % 2 else "vendor-b",
            "status": ("completed", "failed", "queued")[i % 3 - 1],
            "created_ts": T0 + 10 * i + 0.5,
        }
        await job_store.accept_job(
            context.db,
            job_store.NewJob(
                id=job["id"],
                tenant_id=tenants[tenant].id,
                key_id=key_ids[tenant],
                request=normalise_request(
                    DEFAULT_CATALOG, prompt="p", model=model, seconds=seconds
                ),
                callback_url=None,
                has_reference=False,
            ),
        )
        async with context.db.write() as conn:
            await conn.execute(
                update(jobs)
                .where(jobs.c.id == job["id"])
                .values(
                    channel=job["channel"],
                    status=job["status"],
                    created_ts=job["created_ts"],
                    created_at=int(job["created_ts"]),
                )
            )
        seeded.append(job)
    return seeded


async def every_page(client: httpx.AsyncClient, limit: int, **filters: Any) -> list[str]:
    """The ids of every page in turn, checking each page's paging fields."""
    ids: list[str] = []
    after: str | None = None
    while True:
        params = {**filters, "limit": limit, **({"after": after} if after else {})}
        page = await admin(client, "GET", "/admin/jobs", params=params)
        assert page["object"] == "list" and len(page["data"]) <= limit
        ids += [job["id"] for job in page["data"]]
        if not page["has_more"]:
            assert page["next_cursor"] is None
            return ids
        assert len(page["data"]) == limit and page["next_cursor"] == page["data"][-1]["id"]
        after = page["next_cursor"]


async def test_the_job_list_filters_and_pages_newest_first(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    seeded = await seed(app)
    newest_first = sorted(seeded, key=lambda job: -job["created_ts"])
    for filters in (
        {},
        {"tenant": "alice"},
        {"model": "sora-2-pro"},
        {"channel": "vendor-a"},
        {"status": "failed"},
        {"created_after": T0 + 30, "created_before": T0 + 91},
        {"tenant": "alice", "status": "completed", "channel": "vendor-a", "model": "sora-2"},
        {"model": "sora-2", "created_after": T0 + 50},
        {"model": "kling-v9"},
    ):
        expected = [
            job["id"]
            for job in newest_first
            if all(
                (job["created_ts"] >= value)
                if name == "created_after"
                else (job["created_ts"] < value)
                if name == "created_before"
                else job[name] == value
                for name, value in filters.items()
            )
        ]
        assert await every_page(client, 5, **filters) == expected, filters
        assert await every_page(client, 100, **filters) == expected, filters
    first = (await admin(client, "GET", "/admin/jobs", params={"limit": 1}))["data"][0]
    latest = newest_first[0]
    assert first["id"] == latest["id"] and first["tenant"] == latest["tenant"]
    assert (first["status"], first["channel"]) == (latest["status"], latest["channel"])
    price = {"sora-2": "0.400000", "sora-2-pro": "3.000000"}[latest["model"]]  # 4 s, 10 s
    assert first["request"]["model"] == latest["model"] and first["price_usd"] == price


async def test_bad_filters_are_400s_naming_the_parameter_and_an_unknown_tenant_a_404(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await seed(app, count=2)
    for params, param in (
        ({"status": "pending"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"created_after": "yesterday"}, "created_after"),
        ({"created_before": -1}, "created_before"),
        ({"created_after": T0 + 5, "created_before": T0 + 5}, "created_after"),
        ({"after": "video_nothing_here"}, "after"),
    ):
        error = (await admin(client, "GET", "/admin/jobs", 400, params=params))["error"]
        assert error["param"] == param, (params, error)
        assert error["type"] == "invalid_request_error" and error["message"]
    missing = await admin(client, "GET", "/admin/jobs", 404, params={"tenant": "nobody"})
    assert missing["error"]["param"] == "tenant"
    assert (await client.get("/admin/jobs")).status_code == 401


_EXPECTED_INDEX = {
    "": "ix_jobs_created",
    "tenant_id": "ix_jobs_tenant_created",
    "model": "ix_jobs_model_created",
    "channel": "ix_jobs_channel_created",
    "status": "ix_jobs_status_created",
    "created_after": "ix_jobs_created",
}


async def test_every_filter_reads_through_an_index(app: FastAPI) -> None:
    """The plans, not the timings: SQLite must name the index each filter leads with (it
    plans without statistics, as in production); PostgreSQL, told to avoid sequential scans
    on this small table, must find an index for each."""
    context: AppContext = app.state.context
    wheres = {
        "": job_store.JobFilter(),
        "tenant_id": job_store.JobFilter(tenant_id="t", status=JobStatus.FAILED, model="m"),
        "model": job_store.JobFilter(model="m", status=JobStatus.FAILED),
        "channel": job_store.JobFilter(channel="c", model="m", status=JobStatus.QUEUED),
        "status": job_store.JobFilter(status=JobStatus.FAILED),
        "created_after": job_store.JobFilter(created_after=T0, created_before=T0 + 10),
    }
    async with context.db.read() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if not sqlite:
            await conn.execute(text("SET LOCAL enable_seqscan = off"))
        for leading, where in wheres.items():
            for cursor in (None, (T0 + 0.5, "video_x")):
                query = job_store.search_query(where, cursor).limit(21)
                sql = str(
                    query.compile(conn.sync_connection, compile_kwargs={"literal_binds": True})
                )
                prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN "
                plan = " ".join(str(row[-1]) for row in await conn.execute(text(prefix + sql)))
                if sqlite:
                    assert f"USING INDEX {_EXPECTED_INDEX[leading]}" in plan, (leading, plan)
                    assert "TEMP B-TREE" not in plan, plan  # the index gives the order too
                else:
                    assert "Seq Scan" not in plan and "Index" in plan, (leading, plan)


@asynccontextmanager
async def running(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[FastAPI, str]]:
    """An app with its engine (the module's `app` has none), and a key of alice's."""
    application = create_app(
        make_settings(tmp_path / "engine", database_url, admin_token=ADMIN_TOKEN)
    )
    async with application.router.lifespan_context(application):
        context: AppContext = application.state.context
        async with context.db.write() as conn:
            tenant = await accounts.ensure_tenant(conn, "alice")
            await accounts.top_up(conn, tenant.id, 10_000_000, "test")
            _key_id, key = await accounts.create_key(conn, tenant.id)
        yield application, key


async def test_a_job_on_the_local_renderer_ends_with_its_whole_timeline_in_order(
    tmp_path: Path, database_url: str
) -> None:
    async with running(tmp_path, database_url) as (application, key):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            auth = {"Authorization": f"Bearer {key}"}
            created = await http.post("/v1/videos", data={"prompt": "a kite"}, headers=auth)
            assert created.status_code == 200, created.text
            video_id = created.json()["id"]
            deadline = time.monotonic() + 60
            while (await http.get(f"/v1/videos/{video_id}", headers=auth)).json()[
                "status"
            ] != "completed":
                assert time.monotonic() < deadline, "the render did not finish"
                await asyncio.sleep(0.05)
            job = await admin(http, "GET", f"/admin/jobs/{video_id}")
            events = job["events"]
            kinds = [event["kind"] for event in events]
            statuses = [e for e in events if e["kind"] == "upstream_status"]
            assert kinds == ["accepted", "submitted"] + ["upstream_status"] * len(statuses) + [
                "collected",
                "completed",
            ], kinds
            assert events[0]["details"] == {"price_usd": "0.40"}
            assert events[1]["details"] == {"channel": "local", "key_hint": None}
            progress = [event["details"]["progress"] for event in statuses]
            assert statuses and progress == sorted(set(progress)), progress  # rising, no repeat
            assert {event["details"]["status"] for event in statuses} == {"running"}
            assets = {a["name"]: a["bytes"] for a in events[-2]["details"]["assets"]}
            assert set(assets) == {"video", "thumbnail", "spritesheet"}
            assert all(size > 0 for size in assets.values())
            ids = [event["id"] for event in events]
            times = [event["at"] for event in events]
            assert ids == sorted(ids) and times == sorted(times)
            assert job["deliveries"] == [] and job["tenant"] == "alice"

            context: AppContext = application.state.context
            assert context.runner is not None
            assert await context.runner.purge_expired_media(time.time() + 10**9) == 1
            deleted = await http.delete(f"/v1/videos/{video_id}", headers=auth)
            assert deleted.status_code == 200
            after = await admin(http, "GET", f"/admin/jobs/{video_id}")
            assert [e["kind"] for e in after["events"]][-2:] == ["expired", "deleted"]
            listed = await admin(http, "GET", "/admin/jobs", params={"status": "completed"})
            assert [item["id"] for item in listed["data"]] == [video_id]
