"""The operator's `/admin` API on SQLite and PostgreSQL: off without a token, tenants and their
balances through the ledger, prices and group multipliers that price new jobs only, revenue per
channel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from tests.conftest import (
    ADMIN,
    ADMIN_TOKEN,
    KeyMaker,
    admin,
    make_settings,
    tenant_balance_usd,
    wait_for_status,
)
from vidrelay.api.app import create_app
from vidrelay.api.context import AppContext
from vidrelay.settings import Settings
from vidrelay.store import accounts
from vidrelay.store import jobs as job_store
from vidrelay.store.tables import jobs


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "data", database_url, admin_token=ADMIN_TOKEN)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def create_video(client: httpx.AsyncClient, key: str, **fields: str) -> dict[str, Any]:
    fields.setdefault("prompt", "a kite over the dunes")
    fields.setdefault("seconds", "4")
    response = await client.post("/v1/videos", json=fields, headers=auth(key))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def ledger(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = await admin(client, "GET", "/admin/ledger", params=params)
    return body


@asynccontextmanager
async def running(
    tmp_path: Path, database_url: str, **overrides: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """An app with settings other than the module's (the `app` fixture must not run beside it)."""
    application = create_app(make_settings(tmp_path / "other", database_url, **overrides))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield application, http


# --- access --------------------------------------------------------------------------------


async def test_the_admin_api_is_off_and_answers_404_while_no_token_is_set(
    tmp_path: Path, database_url: str
) -> None:
    async with running(tmp_path, database_url, engine=False) as (application, http):
        for method, path, body in (
            ("GET", "/admin/tenants", None),
            ("POST", "/admin/tenants", {"name": "acme"}),
            ("POST", "/admin/tenants", {"not": "valid"}),
            ("GET", "/admin/ledger?limit=0", None),
            ("PUT", "/admin/prices", {"model": "sora-2", "per_request_usd": "0"}),
        ):
            response = await http.request(method, path, json=body, headers=ADMIN)
            assert response.status_code == 404, (method, path, response.text)
            assert response.json()["error"]["code"] == "not_found"
        async with application.state.context.db.read() as conn:
            assert await accounts.find_tenant(conn, "acme") is None


async def test_a_wrong_token_or_a_tenant_key_is_a_401_even_before_the_body_is_read(
    client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    tenant_key = await make_key("alice")
    for headers in (
        {},
        {"Authorization": "Bearer adm-secreT"},
        {"Authorization": "Bearer adm-secret-and-more"},
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
        {"Authorization": "Bearer clé-non-ascii".encode()},
        auth(tenant_key),
    ):
        for method, path, body in (
            ("GET", "/admin/tenants", None),
            ("POST", "/admin/tenants", {"not": "valid"}),
            ("GET", "/admin/ledger?limit=0", None),
        ):
            response = await client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (headers, path, response.text)
            error = response.json()["error"]
            assert error["type"] == "invalid_request_error"
            assert error["code"] in ("missing_admin_token", "invalid_admin_token")
    listing = await admin(client, "GET", "/admin/tenants")
    assert [tenant["name"] for tenant in listing["data"]] == ["alice"]


# --- tenants and balances ------------------------------------------------------------------


async def test_a_tenant_is_created_topped_up_and_adjusted_with_exact_balances_and_ledger(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    created = await admin(
        client,
        "POST",
        "/admin/tenants",
        json={"name": "acme", "balance_usd": "10.5", "rpm": 60, "max_in_flight": 3},
    )
    assert set(created) == {
        "id",
        "name",
        "group",
        "balance_usd",
        "jobs",
        "rpm",
        "max_in_flight",
        "created_at",
        "webhook_secret",
    }
    assert created["name"] == "acme" and created["group"] == "default"
    assert created["webhook_secret"].startswith("whsec_")
    assert (created["balance_usd"], created["jobs"]) == ("10.500000", 0)
    assert (created["rpm"], created["max_in_flight"]) == (60, 3)

    topped = await admin(
        client, "POST", "/admin/tenants/acme/topups", json={"amount_usd": "2.25", "note": "inv 7"}
    )
    assert topped["balance_usd"] == "12.750000"
    adjusted = await admin(
        client,
        "POST",
        "/admin/tenants/acme/adjustments",
        json={"amount_usd": "-1.25", "note": "refund of ticket 42"},
    )
    assert adjusted["balance_usd"] == "11.500000"
    assert await tenant_balance_usd(app, "acme") == (11_500_000, 11_500_000)

    fetched = await admin(client, "GET", "/admin/tenants/acme")
    assert fetched == adjusted
    entries = (await ledger(client, tenant="acme"))["data"]
    assert [
        (entry["kind"], entry["amount_usd"], entry["note"], entry["actor"], entry["tenant"])
        for entry in entries
    ] == [
        ("adjustment", "-1.250000", "refund of ticket 42", "admin", "acme"),
        ("top_up", "2.250000", "inv 7", "admin", "acme"),
        ("top_up", "10.500000", "initial balance", "admin", "acme"),
    ]
    assert entries[0]["id"] > entries[1]["id"] > entries[2]["id"]
    assert all(entry["job_id"] is None for entry in entries)

    taken = await admin(client, "POST", "/admin/tenants", 409, json={"name": "acme"})
    assert (taken["error"]["code"], taken["error"]["param"]) == ("tenant_exists", "name")
    missing = await admin(client, "GET", "/admin/tenants/nobody", 404)
    assert missing["error"]["type"] == "invalid_request_error"
    await admin(client, "POST", "/admin/tenants/nobody/topups", 404, json={"amount_usd": "1"})


async def test_an_adjustment_that_would_make_the_balance_negative_changes_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await admin(client, "POST", "/admin/tenants", json={"name": "acme", "balance_usd": "1"})
    refused = await admin(
        client,
        "POST",
        "/admin/tenants/acme/adjustments",
        400,
        json={"amount_usd": "-1.000001", "note": "too much"},
    )
    assert refused["error"]["param"] == "amount_usd"
    assert "negative" in refused["error"]["message"]
    assert await tenant_balance_usd(app, "acme") == (1_000_000, 1_000_000)
    assert [entry["kind"] for entry in (await ledger(client, tenant="acme"))["data"]] == ["top_up"]
    emptied = await admin(
        client,
        "POST",
        "/admin/tenants/acme/adjustments",
        json={"amount_usd": "-1", "note": "closing the account"},
    )
    assert emptied["balance_usd"] == "0.000000"


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/admin/tenants/acme/topups", {"amount_usd": "-5"}, "amount_usd"),
        ("/admin/tenants/acme/topups", {"amount_usd": "0"}, "amount_usd"),
        ("/admin/tenants/acme/topups", {"amount_usd": 5}, "amount_usd"),
        ("/admin/tenants/acme/topups", {"amount_usd": "1e3"}, "amount_usd"),
        ("/admin/tenants/acme/topups", {"amount_usd": "1.0000001"}, "amount_usd"),
        ("/admin/tenants/acme/topups", {"amount_usd": "NaN"}, "amount_usd"),
        ("/admin/tenants/acme/topups", {"amount_usd": "1_000"}, "amount_usd"),
        ("/admin/tenants/acme/topups", {"amount": "5"}, "amount_usd"),
        ("/admin/tenants/acme/adjustments", {"amount_usd": "1"}, "note"),
        ("/admin/tenants/acme/adjustments", {"amount_usd": "1", "note": "  "}, "note"),
        ("/admin/tenants/acme/adjustments", {"amount_usd": "0", "note": "x"}, "amount_usd"),
        ("/admin/tenants", {"name": "b", "balance_usd": "-1"}, "balance_usd"),
        ("/admin/tenants", {"name": "b", "group": "nope"}, "group"),
        ("/admin/tenants", {"name": "b", "rpm": 0}, "rpm"),
        ("/admin/tenants", {"name": "a/b"}, "name"),
        ("/admin/tenants", {"name": ""}, "name"),
        ("/admin/tenants", {"name": "b", "balance": "5"}, "balance"),
    ],
)
async def test_bad_admin_input_is_a_400_naming_the_parameter(
    app: FastAPI, client: httpx.AsyncClient, path: str, body: dict[str, Any], param: str
) -> None:
    await admin(client, "POST", "/admin/tenants", json={"name": "acme", "balance_usd": "3"})
    error = (await admin(client, "POST", path, 400, json=body))["error"]
    assert error["param"] == param, error
    assert await tenant_balance_usd(app, "acme") == (3_000_000, 3_000_000)
    tenants = (await admin(client, "GET", "/admin/tenants"))["data"]
    assert [tenant["name"] for tenant in tenants] == ["acme"]


async def test_patch_sets_group_and_limits_and_null_clears_only_the_limit_named(
    client: httpx.AsyncClient,
) -> None:
    await admin(client, "POST", "/admin/tenants", json={"name": "acme"})
    await admin(client, "PUT", "/admin/groups/resellers", json={"multiplier": "0.8"})
    patched = await admin(
        client,
        "PATCH",
        "/admin/tenants/acme",
        json={"group": "resellers", "rpm": 30, "max_in_flight": 2},
    )
    assert (patched["group"], patched["rpm"], patched["max_in_flight"]) == ("resellers", 30, 2)
    cleared = await admin(client, "PATCH", "/admin/tenants/acme", json={"rpm": None})
    assert (cleared["group"], cleared["rpm"], cleared["max_in_flight"]) == ("resellers", None, 2)
    unknown = await admin(client, "PATCH", "/admin/tenants/acme", 400, json={"group": "vip"})
    assert unknown["error"]["param"] == "group"
    await admin(client, "PATCH", "/admin/tenants/acme", 400, json={"group": None})
    await admin(client, "PATCH", "/admin/tenants/nobody", 404, json={"rpm": 1})
    assert await admin(client, "GET", "/admin/tenants/acme") == cleared


# --- ledger --------------------------------------------------------------------------------


async def test_the_ledger_filters_by_tenant_and_kind_and_pages_with_before_id(
    client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    await admin(client, "POST", "/admin/tenants", json={"name": "acme", "balance_usd": "1"})
    await admin(client, "POST", "/admin/tenants", json={"name": "globex", "balance_usd": "2"})
    for amount in ("3", "4", "5"):
        await admin(client, "POST", "/admin/tenants/acme/topups", json={"amount_usd": amount})
    await admin(
        client, "POST", "/admin/tenants/acme/adjustments", json={"amount_usd": "-1", "note": "x"}
    )
    key = await make_key("acme", "0")
    video = await create_video(client, key)

    acme_top_ups = await ledger(client, tenant="acme", kind="top_up")
    assert [entry["amount_usd"] for entry in acme_top_ups["data"]] == [
        "5.000000",
        "4.000000",
        "3.000000",
        "1.000000",
    ]
    assert acme_top_ups["has_more"] is False
    charges = (await ledger(client, kind="charge"))["data"]
    assert [(c["tenant"], c["job_id"], c["amount_usd"]) for c in charges] == [
        ("acme", video["id"], "-0.400000")
    ]
    by_job = (await ledger(client, job_id=video["id"]))["data"]
    assert [entry["kind"] for entry in by_job] == ["charge"]
    globex = (await ledger(client, tenant="globex"))["data"]
    assert [(entry["tenant"], entry["amount_usd"]) for entry in globex] == [("globex", "2.000000")]

    everything = (await ledger(client))["data"]
    assert len(everything) == 7
    pages: list[list[int]] = []
    before_id = None
    while True:
        params = {"limit": 3} | ({"before_id": before_id} if before_id else {})
        page = await ledger(client, **params)
        pages.append([entry["id"] for entry in page["data"]])
        if not page["has_more"]:
            break
        before_id = page["data"][-1]["id"]
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [entry_id for page in pages for entry_id in page] == [e["id"] for e in everything]

    unknown = await admin(client, "GET", "/admin/ledger", 404, params={"tenant": "nobody"})
    assert unknown["error"]["param"] == "tenant"
    bad_kind = await admin(client, "GET", "/admin/ledger", 400, params={"kind": "gift"})
    assert bad_kind["error"]["param"] == "kind"
    assert "top_up, charge, refund, adjustment" in bad_kind["error"]["message"]
    for params in ({"limit": 0}, {"limit": 501}, {"before_id": "x"}, {"since": -1}):
        error = (await admin(client, "GET", "/admin/ledger", 400, params=params))["error"]
        assert error["param"] == next(iter(params))
    await wait_for_status(client, video["id"], key)


# --- prices and groups ---------------------------------------------------------------------


async def test_a_price_change_prices_new_jobs_and_an_accepted_job_keeps_its_price(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    key = await make_key("alice", "50")
    before = await create_video(client, key)
    assert await tenant_balance_usd(app, "alice") == (49_600_000, 49_600_000)

    rule = {"model": "sora-2", "per_request_usd": "1.5"}
    stored = await admin(client, "PUT", "/admin/prices", json=rule)
    assert stored == {
        "model": "sora-2",
        "route_class": None,
        "size_class": None,
        "per_second_usd": None,
        "per_request_usd": "1.500000",
    }
    listed = await admin(client, "GET", "/admin/prices")
    assert stored in listed["rules"]
    assert {"name": "default", "multiplier": "1.000000"} in listed["groups"]

    after = await create_video(client, key)
    assert await tenant_balance_usd(app, "alice") == (48_100_000, 48_100_000)
    charges = {c["job_id"]: c["amount_usd"] for c in (await ledger(client, kind="charge"))["data"]}
    assert charges == {before["id"]: "-0.400000", after["id"]: "-1.500000"}

    async with app.state.context.db.read() as conn:
        for video, price in ((before, 400_000), (after, 1_500_000)):
            job = await job_store.get_job(conn, video["id"])
            assert job is not None and job.price_micros == price
    await wait_for_status(client, before["id"], key)
    await wait_for_status(client, after["id"], key)

    await admin(client, "DELETE", "/admin/prices", params={"model": "sora-2"})
    unpriced = await client.post(
        "/v1/videos", json={"prompt": "x", "seconds": "4"}, headers=auth(key)
    )
    assert unpriced.status_code == 400
    assert unpriced.json()["error"]["code"] == "model_not_priced"
    await admin(client, "DELETE", "/admin/prices", 404, params={"model": "sora-2"})


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": "veo-3", "per_second_usd": "0.1"}, "model", "model_not_found"),
        ({"model": "sora-2"}, "per_second_usd", "invalid_value"),
        (
            {"model": "sora-2", "per_second_usd": "0.1", "per_request_usd": "1"},
            "per_second_usd",
            "invalid_value",
        ),
        ({"model": "sora-2", "per_second_usd": "-0.1"}, "per_second_usd", "invalid_value"),
        ({"model": "sora-2", "per_request_usd": 1}, "per_request_usd", "invalid_value"),
        (
            {"model": "sora-2", "route_class": "premium", "per_request_usd": "1"},
            "route_class",
            "invalid_value",
        ),
        (
            {"model": "sora-2-pro", "route_class": "official", "per_request_usd": "1"},
            "route_class",
            "invalid_value",
        ),
        (
            {"model": "sora-2", "size_class": "4k", "per_request_usd": "1"},
            "size_class",
            "invalid_value",
        ),
    ],
)
async def test_a_bad_price_rule_is_a_400_and_stores_nothing(
    client: httpx.AsyncClient, body: dict[str, Any], param: str, code: str
) -> None:
    before = (await admin(client, "GET", "/admin/prices"))["rules"]
    error = (await admin(client, "PUT", "/admin/prices", 400, json=body))["error"]
    assert (error["param"], error["code"]) == (param, code)
    assert (await admin(client, "GET", "/admin/prices"))["rules"] == before


async def test_a_specific_rule_wins_and_deleting_it_restores_the_general_one(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    key = await make_key("alice", "50")
    high = {"model": "sora-2", "size_class": "high", "per_second_usd": "0.25"}
    await admin(client, "PUT", "/admin/prices", json=high)
    await create_video(client, key, size="1792x1024")
    assert (await tenant_balance_usd(app, "alice"))[0] == 49_000_000  # 4 s x $0.25
    await create_video(client, key)
    assert (await tenant_balance_usd(app, "alice"))[0] == 48_600_000  # 4 s x $0.10
    for bad in ({"size_class": "4k"}, {"route_class": "x"}):
        await admin(client, "DELETE", "/admin/prices", 400, params={"model": "sora-2", **bad})
    deleted = await admin(
        client, "DELETE", "/admin/prices", params={"model": "sora-2", "size_class": "high"}
    )
    assert deleted["deleted"] is True
    await create_video(client, key, size="1792x1024")
    assert await tenant_balance_usd(app, "alice") == (48_200_000, 48_200_000)


async def test_a_group_multiplier_of_half_halves_the_price_of_a_new_job(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    group = await admin(client, "PUT", "/admin/groups/half", json={"multiplier": "0.5"})
    assert group == {"name": "half", "multiplier": "0.500000"}
    await admin(
        client, "POST", "/admin/tenants", json={"name": "bob", "balance_usd": "10", "group": "half"}
    )
    bobs_key = await make_key("bob", "0")
    alices_key = await make_key("alice", "10")
    await create_video(client, bobs_key)
    await create_video(client, alices_key)
    assert await tenant_balance_usd(app, "bob") == (9_800_000, 9_800_000)
    assert await tenant_balance_usd(app, "alice") == (9_600_000, 9_600_000)

    await admin(client, "PUT", "/admin/groups/half", json={"multiplier": "0.25"})
    await create_video(client, bobs_key)
    assert await tenant_balance_usd(app, "bob") == (9_700_000, 9_700_000)
    groups = (await admin(client, "GET", "/admin/prices"))["groups"]
    assert {"name": "half", "multiplier": "0.250000"} in groups
    for multiplier in ("-0.5", "0.1234567", "1e-1", "half"):
        error = await admin(
            client, "PUT", "/admin/groups/half", 400, json={"multiplier": multiplier}
        )
        assert error["error"]["param"] == "multiplier"


# --- revenue -------------------------------------------------------------------------------


async def test_revenue_is_reported_per_channel_with_cost_and_margin(
    app: FastAPI, client: httpx.AsyncClient, make_key: KeyMaker
) -> None:
    alice = await make_key("alice", "50")
    bob = await make_key("bob", "50")
    videos = [
        (await create_video(client, alice), alice),
        (await create_video(client, alice, seconds="8"), alice),
        (await create_video(client, bob), bob),
    ]
    for video, key in videos:
        assert (await wait_for_status(client, video["id"], key))["status"] == "completed"
    context: AppContext = app.state.context
    async with context.db.write() as conn:  # what an adapter will record once one knows it
        await conn.execute(
            update(jobs).where(jobs.c.id == videos[0][0]["id"]).values(cost_micros=150_000)
        )

    report = await admin(client, "GET", "/admin/revenue")
    figures = {
        "jobs": 3,
        "completed": 3,
        "failed": 0,
        "revenue_usd": "1.600000",
        "cost_usd": "0.150000",
        "margin_usd": "1.450000",
    }
    assert report["data"] == [{"channel": "local", **figures}]
    assert report["total"] == figures
    created = [video["created_at"] for video, _key in videos]
    empty = await admin(
        client, "GET", "/admin/revenue", params={"since": max(created) + 1, "until": 10**10}
    )
    assert empty["data"] == []
    assert empty["total"]["revenue_usd"] == "0.000000"
    windowed = await admin(
        client, "GET", "/admin/revenue", params={"since": min(created), "until": max(created) + 1}
    )
    assert windowed["total"] == figures
    bad = await admin(client, "GET", "/admin/revenue", 400, params={"since": 10, "until": 5})
    assert bad["error"]["param"] == "since"


async def test_jobs_that_never_reached_a_channel_count_as_unassigned_and_failed_ones_earn_nothing(
    tmp_path: Path, database_url: str
) -> None:
    overrides = {"engine": False, "admin_token": ADMIN_TOKEN}
    async with running(tmp_path, database_url, **overrides) as (application, http):
        context: AppContext = application.state.context
        async with context.db.write() as conn:
            tenant = await accounts.ensure_tenant(conn, "alice")
            await accounts.top_up(conn, tenant.id, 10_000_000, "test")
            _key_id, key = await accounts.create_key(conn, tenant.id)
        waiting = await create_video(http, key)
        failed = await create_video(http, key, seconds="8")
        async with context.db.write() as conn:
            assert await job_store.fail_and_refund(conn, failed["id"], "rejected", "test")
        report = await admin(http, "GET", "/admin/revenue")
        figures = {
            "jobs": 2,
            "completed": 0,
            "failed": 1,
            "revenue_usd": "0.400000",
            "cost_usd": "0.000000",
            "margin_usd": "0.400000",
        }
        assert report["data"] == [{"channel": "unassigned", **figures}]
        assert report["total"] == figures
        assert waiting["status"] == "pending"
