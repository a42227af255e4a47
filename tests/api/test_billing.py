"""A tenant reads its own balance with its API key, on SQLite and PostgreSQL, in the shapes
that chat clients and new-api use; a balance that cannot pay says what it is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, KeyMaker, admin, make_settings
from vidrelay.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "data", database_url, admin_token=ADMIN_TOKEN, engine=False)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def day(offset: int = 0) -> str:
    return (datetime.now(UTC) + timedelta(days=offset)).date().isoformat()


async def test_subscription_and_usage_after_a_top_up_and_a_spend(
    client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    key = await make_key("acme", "0")
    await admin(client, "POST", "/admin/tenants/acme/topups", json={"amount_usd": "5"})
    await make_key("other", "7")
    empty = (await client.get("/v1/dashboard/billing/usage", headers=auth(key))).json()
    assert empty == {"object": "list", "daily_costs": [], "total_usage": 0}

    video = await client.post(
        "/v1/videos", json={"prompt": "a kite", "seconds": "4"}, headers=auth(key)
    )
    assert video.status_code == 200, video.text  # sora-2 at $0.10 a second: $0.40
    subscription = (
        await client.get("/v1/dashboard/billing/subscription", headers=auth(key))
    ).json()
    assert subscription == {
        "object": "billing_subscription",
        "has_payment_method": True,
        "soft_limit_usd": 5.0,
        "hard_limit_usd": 5.0,
        "system_hard_limit_usd": 5.0,
        "access_until": 0,
    }
    usage = (await client.get("/v1/dashboard/billing/usage", headers=auth(key))).json()
    assert usage["object"] == "list" and usage["total_usage"] == 40.0
    today = int(datetime.fromisoformat(day()).replace(tzinfo=UTC).timestamp())
    assert usage["daily_costs"] == [
        {"timestamp": float(today), "line_items": [{"name": "sora-2", "cost": 40.0}]}
    ]
    balance = (await admin(client, "GET", "/admin/tenants/acme"))["balance_usd"]
    assert float(balance) == subscription["hard_limit_usd"] - usage["total_usage"] / 100 == 4.6

    for params, cents in (
        ({"start_date": day(), "end_date": day(1)}, 40.0),
        ({"start_date": day()}, 40.0),
        ({"end_date": day()}, 0),  # the end date is not included
        ({"start_date": day(1)}, 0),
    ):
        windowed = await client.get("/v1/dashboard/billing/usage", params=params, headers=auth(key))
        assert windowed.json()["total_usage"] == cents, (params, windowed.text)


async def test_billing_needs_a_key_and_good_dates(
    client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    for path in ("/v1/dashboard/billing/subscription", "/v1/dashboard/billing/usage"):
        response = await client.get(path)
        assert response.status_code == 401 and response.json()["error"]["code"] == "missing_api_key"
    key = await make_key("acme", "1")
    for params, param in (
        ({"start_date": "yesterday"}, "start_date"),
        ({"end_date": "2026-13-01"}, "end_date"),
        ({"start_date": day(), "end_date": day()}, "start_date"),
    ):
        response = await client.get("/v1/dashboard/billing/usage", params=params, headers=auth(key))
        assert response.status_code == 400, response.text
        assert response.json()["error"]["param"] == param


async def test_insufficient_quota_states_the_balance_and_the_price(
    client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    key = await make_key("acme", "0.5")
    response = await client.post(
        "/v1/videos", json={"prompt": "a kite", "seconds": "12"}, headers=auth(key)
    )
    assert response.status_code == 429, response.text
    error = response.json()["error"]
    assert error["code"] == "insufficient_quota"
    assert error["message"] == (
        "Your balance is $0.50; this video costs $1.20 (12 s of sora-2). Top up and try again."
    )
    subscription = (
        await client.get("/v1/dashboard/billing/subscription", headers=auth(key))
    ).json()
    assert subscription["hard_limit_usd"] == 0.5
