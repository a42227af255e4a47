"""`GET /v1/usage/videos` on SQLite and PostgreSQL: a tenant's own jobs per UTC day and model,
failed jobs counted but not paid for, other tenants' jobs never counted."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from tests.conftest import KeyMaker, wait_for_status
from vidrelay.api.context import AppContext
from vidrelay.store import jobs as job_store
from vidrelay.store.tables import jobs

DAY_S = 86_400


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def create(client: httpx.AsyncClient, key: str, **fields: str) -> dict[str, Any]:
    fields.setdefault("prompt", "a lighthouse at dusk")
    fields.setdefault("seconds", "4")
    response = await client.post("/v1/videos", json=fields, headers=auth(key))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def usage(client: httpx.AsyncClient, key: str, **params: Any) -> dict[str, Any]:
    response = await client.get("/v1/usage/videos", params=params, headers=auth(key))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def utc_day(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).date().isoformat()


def row(day: str | None, model: str | None, **figures: Any) -> dict[str, Any]:
    return {"object": "usage.videos.result", "day": day, "model": model, **figures}


async def fail(app: FastAPI, video_id: str) -> None:
    context: AppContext = app.state.context
    async with context.db.write() as conn:
        assert await job_store.fail_and_refund(conn, video_id, "upstream_error", "test failure")


async def move_back_one_day(app: FastAPI, video_id: str) -> None:
    context: AppContext = app.state.context
    async with context.db.write() as conn:
        await conn.execute(
            update(jobs).where(jobs.c.id == video_id).values(created_at=jobs.c.created_at - DAY_S)
        )


async def test_usage_is_grouped_by_day_and_model_and_counts_only_the_callers_jobs(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    alice = await make_key("alice", "50")
    bob = await make_key("bob", "50")
    yesterday_job = await create(client, alice)
    today_job = await create(client, alice)
    failed_job = await create(client, alice)
    await fail(app, failed_job["id"])
    pro_failed = await create(client, alice, model="sora-2-pro", seconds="10")
    await fail(app, pro_failed["id"])
    bobs_job = await create(client, bob)
    for video, key in ((yesterday_job, alice), (today_job, alice), (bobs_job, bob)):
        assert (await wait_for_status(client, video["id"], key))["status"] == "completed"
    await move_back_one_day(app, yesterday_job["id"])

    report = await usage(client, alice)
    assert report["object"] == "list"
    assert report["end_time"] - report["start_time"] == 30 * DAY_S
    yesterday = utc_day(yesterday_job["created_at"] - DAY_S)
    today = utc_day(today_job["created_at"])
    assert utc_day(failed_job["created_at"]) == today == utc_day(pro_failed["created_at"])
    done = {"completed": 1, "failed": 0, "in_progress": 0}
    assert report["data"] == [
        row(yesterday, "sora-2", jobs=1, **done, seconds=4, amount_usd="0.400000"),
        row(
            today,
            "sora-2",
            jobs=2,
            completed=1,
            failed=1,
            in_progress=0,
            seconds=4,
            amount_usd="0.400000",
        ),
        row(
            today,
            "sora-2-pro",
            jobs=1,
            completed=0,
            failed=1,
            in_progress=0,
            seconds=0,
            amount_usd="0.000000",
        ),
    ]
    assert report["total"] == {"jobs": 4, "seconds": 8, "amount_usd": "0.800000"}

    by_model = await usage(client, alice, group_by="model")
    assert [(r["day"], r["model"], r["jobs"], r["amount_usd"]) for r in by_model["data"]] == [
        (None, "sora-2", 3, "0.800000"),
        (None, "sora-2-pro", 1, "0.000000"),
    ]
    by_day = await usage(client, alice, group_by="day")
    assert [(r["day"], r["model"], r["jobs"], r["failed"]) for r in by_day["data"]] == [
        (yesterday, None, 1, 0),
        (today, None, 3, 2),
    ]
    ungrouped = await usage(client, alice, group_by="")
    assert [(r["jobs"], r["seconds"], r["amount_usd"]) for r in ungrouped["data"]] == [
        (4, 8, "0.800000")
    ]

    bobs = await usage(client, bob)
    assert bobs["data"] == [
        row(
            utc_day(bobs_job["created_at"]),
            "sora-2",
            jobs=1,
            **done,
            seconds=4,
            amount_usd="0.400000",
        ),
    ]
    assert bobs["total"] == {"jobs": 1, "seconds": 4, "amount_usd": "0.400000"}


async def test_the_window_selects_jobs_by_creation_time_and_deleted_jobs_still_count(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    key = await make_key("alice", "50")
    video = await create(client, key)
    await wait_for_status(client, video["id"], key)
    deleted = await client.delete(f"/v1/videos/{video['id']}", headers=auth(key))
    assert deleted.status_code == 200
    created = video["created_at"]

    inside = await usage(client, key, start_time=created, end_time=created + 1)
    assert (inside["start_time"], inside["end_time"]) == (created, created + 1)
    assert inside["total"] == {"jobs": 1, "seconds": 4, "amount_usd": "0.400000"}
    before = await usage(client, key, start_time=created - 10, end_time=created)
    assert before["data"] == [] and before["total"]["jobs"] == 0
    soon = int(time.time()) + 60
    later = await usage(client, key, start_time=soon, end_time=soon + DAY_S)
    assert later["data"] == []
    assert later["total"] == {"jobs": 0, "seconds": 0, "amount_usd": "0.000000"}
    only_end = await usage(client, key, end_time=created + 1)
    assert only_end["start_time"] == created + 1 - 30 * DAY_S
    assert only_end["total"]["jobs"] == 1


async def test_bad_usage_parameters_are_400s_naming_the_parameter(
    client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    key = await make_key()
    cases = [
        ({"group_by": "day,week"}, "group_by"),
        ({"start_time": "yesterday"}, "start_time"),
        ({"start_time": "-1"}, "start_time"),
        ({"end_time": str(10**20)}, "end_time"),
        ({"start_time": "2000", "end_time": "1000"}, "start_time"),
    ]
    for params, param in cases:
        response = await client.get("/v1/usage/videos", params=params, headers=auth(key))
        assert response.status_code == 400, (params, response.text)
        assert response.json()["error"]["param"] == param
    week = await client.get("/v1/usage/videos", params={"group_by": "week"}, headers=auth(key))
    assert "day, model" in week.json()["error"]["message"]


async def test_usage_needs_a_tenant_key(client: httpx.AsyncClient) -> None:
    for headers in ({}, auth("sk-not-a-real-key")):
        response = await client.get("/v1/usage/videos", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] in ("missing_api_key", "invalid_api_key")
