"""Money at the API: idempotent submits, spending limits, jobs in flight, requests per minute,
and the race of many concurrent submits against one balance."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update

from tests.conftest import make_settings, tenant_balance_usd
from vidrelay.domain.keys import KeySpec
from vidrelay.domain.limits import Limits
from vidrelay.domain.pricing import usd_to_micros
from vidrelay.settings import Settings
from vidrelay.store import accounts
from vidrelay.store.tables import idempotency_keys, jobs, ledger_entries


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # accept only: these tests are about what accept does, not about rendering
    return make_settings(tmp_path / "data", database_url, engine=False)


async def new_key(
    app: FastAPI,
    tenant: str,
    balance_usd: str,
    *,
    limits: Limits | None = None,
    spend_limit_usd: str | None = None,
) -> str:
    async with app.state.context.db.write() as conn:
        found = await accounts.ensure_tenant(conn, tenant)
        await accounts.top_up(conn, found.id, usd_to_micros(balance_usd), "test")
        spec = KeySpec(
            limits=limits or Limits(),
            spend_limit_micros=usd_to_micros(spend_limit_usd) if spend_limit_usd else None,
        )
        _id, key = await accounts.create_key(conn, found.id, spec)
    return key


async def submit(
    client: httpx.AsyncClient, key: str, idempotency_key: str | None = None, **fields: str
) -> httpx.Response:
    fields.setdefault("prompt", "a paper boat")
    fields.setdefault("seconds", "4")
    headers = {"Authorization": f"Bearer {key}"}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    return await client.post("/v1/videos", data=fields, files={"_": (None, "")}, headers=headers)


async def count(app: FastAPI, table, *where) -> int:  # type: ignore[no-untyped-def]
    async with app.state.context.db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table).where(*where)) or 0)


async def test_a_retried_submit_with_the_same_idempotency_key_returns_the_same_job_once_charged(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    key = await new_key(app, "alice", "10")
    first = await submit(client, key, "retry-1", seconds="8")
    again = await submit(client, key, "retry-1", seconds=8)  # the same request, spelt differently
    assert first.status_code == again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert await tenant_balance_usd(app, "alice") == (9_200_000, 9_200_000)
    assert await count(app, jobs) == 1

    other = await submit(client, key, "retry-1", seconds="12")
    assert other.status_code == 409
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert await tenant_balance_usd(app, "alice") == (9_200_000, 9_200_000)

    fresh = await submit(client, key, "retry-2", seconds="8")
    assert fresh.json()["id"] != first.json()["id"]
    assert await tenant_balance_usd(app, "alice") == (8_400_000, 8_400_000)


async def test_an_idempotency_key_is_per_tenant_and_expires_after_24_hours(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    alice = await new_key(app, "alice", "10")
    bob = await new_key(app, "bob", "10")
    mine = (await submit(client, alice, "shared")).json()["id"]
    theirs = (await submit(client, bob, "shared")).json()["id"]
    assert mine != theirs
    async with app.state.context.db.write() as conn:
        await conn.execute(
            update(idempotency_keys).values(created_at=idempotency_keys.c.created_at - 86_401)
        )
    later = await submit(client, alice, "shared", prompt="something else entirely")
    assert later.status_code == 200 and later.json()["id"] not in (mine, theirs)


async def test_concurrent_retries_with_one_idempotency_key_create_one_job(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    key = await new_key(app, "alice", "10")
    responses = await asyncio.gather(*(submit(client, key, "burst") for _ in range(12)))
    assert {response.status_code for response in responses} == {200}
    assert len({response.json()["id"] for response in responses}) == 1
    assert await count(app, jobs) == 1
    assert await tenant_balance_usd(app, "alice") == (9_600_000, 9_600_000)


@pytest.mark.parametrize("header", ["", "x" * 256])
async def test_a_malformed_idempotency_key_is_a_400(
    app: FastAPI, client: httpx.AsyncClient, header: str
) -> None:
    key = await new_key(app, "alice", "10")
    response = await client.post(
        "/v1/videos",
        data={"prompt": "boat"},
        files={"_": (None, "")},
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": header},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "Idempotency-Key"


async def test_a_key_spending_limit_holds_on_top_of_the_balance(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    key = await new_key(app, "alice", "100", spend_limit_usd="1")
    assert (await submit(client, key, seconds="8")).status_code == 200  # $0.80
    refused = await submit(client, key, seconds="4")  # $0.40 would make $1.20
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "insufficient_quota"
    assert "spending limit" in refused.json()["error"]["message"]
    assert await tenant_balance_usd(app, "alice") == (99_200_000, 99_200_000)


async def test_a_refund_gives_back_the_keys_spending_room(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    from vidrelay.store.jobs import fail_and_refund

    key = await new_key(app, "alice", "100", spend_limit_usd="1")
    video = (await submit(client, key, seconds="8")).json()
    async with app.state.context.db.write() as conn:
        assert await fail_and_refund(conn, video["id"], "upstream_error", "boom")
    assert (await submit(client, key, seconds="8")).status_code == 200


async def test_jobs_in_flight_are_capped_per_key_and_per_tenant(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    key = await new_key(app, "alice", "100", limits=Limits(max_in_flight=2))
    assert (await submit(client, key)).status_code == 200
    assert (await submit(client, key)).status_code == 200
    refused = await submit(client, key)
    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    assert refused.json()["error"]["type"] == "requests"
    assert "retry-after" in refused.headers
    assert await tenant_balance_usd(app, "alice") == (99_200_000, 99_200_000)

    async with app.state.context.db.write() as conn:
        tenant = await accounts.find_tenant(conn, "alice")
        assert tenant is not None
        await accounts.set_tenant_options(conn, tenant.id, limits=Limits(max_in_flight=1))
    other_key = await new_key(app, "alice", "1")
    assert (await submit(client, other_key)).status_code == 429  # the tenant has 2 already


async def test_requests_per_minute_are_limited_with_openai_headers(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    key = await new_key(app, "alice", "100", limits=Limits(rpm=2))
    first = await submit(client, key)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-reset-requests"].endswith("s")
    assert (await submit(client, key)).status_code == 200
    limited = await submit(client, key)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"
    unlimited = await new_key(app, "bob", "100")
    for _ in range(5):
        response = await submit(client, unlimited)
        assert response.status_code == 200
        assert "x-ratelimit-limit-requests" not in response.headers


@pytest.mark.parametrize("concurrent_submits", [200])
async def test_concurrent_submits_never_spend_more_than_the_balance(
    app: FastAPI, concurrent_submits: int
) -> None:
    """200 concurrent submits against a balance that pays for exactly 50 accept exactly 50."""
    key = await new_key(app, "racer", "20")  # 50 x $0.40
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        responses = await asyncio.gather(
            *(submit(http, key, prompt=f"race {n}") for n in range(concurrent_submits))
        )
    statuses = [response.status_code for response in responses]
    assert statuses.count(200) == 50, statuses
    assert statuses.count(429) == concurrent_submits - 50
    assert all(
        r.json()["error"]["code"] == "insufficient_quota" for r in responses if r.status_code == 429
    )
    assert await tenant_balance_usd(app, "racer") == (0, 0)
    assert await count(app, jobs) == 50
    assert await count(app, ledger_entries, ledger_entries.c.kind == "charge") == 50
