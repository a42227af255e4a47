"""A tenant's API keys over the admin API on SQLite and PostgreSQL: created with a name, an
expiry and allowed models, shown once, stored as a hash, listed as hints, revoked; an expired
key is a 401 that says so and a model outside the key's list a 403 that charges nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from tests.conftest import ADMIN, ADMIN_TOKEN, admin, make_settings, tenant_balance_usd
from vidrelay.domain.keys import hash_api_key
from vidrelay.settings import Settings
from vidrelay.store import accounts
from vidrelay.store.tables import api_keys, jobs, ledger_entries


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "data", database_url, admin_token=ADMIN_TOKEN, engine=False)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def new_tenant(client: httpx.AsyncClient, name: str = "acme", balance: str = "10") -> None:
    await admin(client, "POST", "/admin/tenants", json={"name": name, "balance_usd": balance})


async def new_key(client: httpx.AsyncClient, tenant: str = "acme", **body: Any) -> dict[str, Any]:
    created: dict[str, Any] = await admin(
        client, "POST", f"/admin/tenants/{tenant}/keys", expect=201, json=body
    )
    return created


async def test_a_key_is_created_shown_once_listed_as_a_hint_and_revoked(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await new_tenant(client)
    expires = int(time.time()) + 86_400
    created = await new_key(
        client, name="ci", expires_at=expires, models=["sora-2", "sora-2", "sora-2-pro"]
    )
    key = created["key"]
    assert key.startswith("sk-") and created["id"].startswith("key_")
    assert created["hint"] == f"{key[:6]}…{key[-4:]}"
    assert (created["name"], created["expires_at"], created["models"]) == (
        "ci",
        expires,
        ["sora-2", "sora-2-pro"],
    )
    assert created["revoked"] is False and created["tenant"] == "acme"
    plain = await new_key(client)
    assert (plain["name"], plain["expires_at"], plain["models"]) == (None, None, None)

    listing = await admin(client, "GET", "/admin/tenants/acme/keys")
    shown = {entry["id"]: entry for entry in listing["data"]}  # one second: any order
    assert sorted(shown) == sorted([created["id"], plain["id"]])
    assert shown[created["id"]] == {name: value for name, value in created.items() if name != "key"}
    text = str(listing)
    assert key not in text and hash_api_key(key) not in text and "key_hash" not in text

    async with app.state.context.db.read() as conn:
        stored = (await conn.execute(select(api_keys).where(api_keys.c.id == created["id"]))).one()
    assert stored.key_hash == hash_api_key(key)
    assert all(key not in str(value) for value in stored), "the key is stored in clear"

    assert (await client.get("/v1/models", headers=auth(key))).status_code == 200
    revoked = await admin(client, "DELETE", f"/admin/keys/{created['id']}")
    assert revoked["revoked"] is True and isinstance(revoked["revoked_at"], int)
    refused = await client.get("/v1/models", headers=auth(key))
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
    assert await admin(client, "DELETE", f"/admin/keys/{created['id']}") == revoked
    assert (await client.get("/v1/models", headers=auth(plain["key"]))).status_code == 200
    listing = await admin(client, "GET", "/admin/tenants/acme/keys")
    revoked_by_id = {entry["id"]: entry["revoked"] for entry in listing["data"]}
    assert revoked_by_id == {created["id"]: True, plain["id"]: False}


async def test_an_unknown_tenant_or_key_is_a_404_and_no_tenant_is_created(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    for method, path, body in (
        ("GET", "/admin/tenants/nobody/keys", None),
        ("POST", "/admin/tenants/nobody/keys", {"name": "x"}),
        ("DELETE", "/admin/keys/key_000000000000000000000000", None),
    ):
        error = (await admin(client, method, path, expect=404, json=body))["error"]
        assert error["type"] == "invalid_request_error" and error["code"] in (
            "not_found",
            "key_not_found",
        )
    async with app.state.context.db.read() as conn:
        assert await accounts.find_tenant(conn, "nobody") is None
        assert await accounts.list_keys(conn) == []


async def test_bad_key_fields_are_400s_naming_the_field(client: httpx.AsyncClient) -> None:
    await new_tenant(client)
    now = int(time.time())
    for body, param in (
        ({"expires_at": now - 10}, "expires_at"),
        ({"expires_at": 10**30}, "expires_at"),
        ({"expires_at": "soon"}, "expires_at"),
        ({"models": []}, "models"),
        ({"models": ["sora-2", "no-such-model"]}, "models"),
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"secret": "mine"}, "secret"),
    ):
        response = await client.post("/admin/tenants/acme/keys", json=body, headers=ADMIN)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error"]["param"] == param, (body, response.text)
    assert (await admin(client, "GET", "/admin/tenants/acme/keys"))["data"] == []


async def test_a_key_used_past_its_expiry_is_a_401_that_says_it_expired(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await new_tenant(client)
    created = await new_key(client, expires_at=int(time.time()) + 3600)
    assert (await client.get("/v1/models", headers=auth(created["key"]))).status_code == 200
    subscription = await client.get(
        "/v1/dashboard/billing/subscription", headers=auth(created["key"])
    )
    assert subscription.json()["access_until"] == created["expires_at"]
    async with app.state.context.db.write() as conn:
        await conn.execute(
            update(api_keys)
            .where(api_keys.c.id == created["id"])
            .values(expires_at=int(time.time()) - 1)
        )
    for method, path in (("GET", "/v1/models"), ("POST", "/v1/videos")):
        response = await client.request(
            method, path, headers=auth(created["key"]), json={"prompt": "a kite"}
        )
        assert response.status_code == 401, response.text
        error = response.json()["error"]
        assert "expired" in error["message"] and error["code"] == "api_key_expired"
    assert await tenant_balance_usd(app, "acme") == (10_000_000, 10_000_000)


async def test_a_model_outside_the_keys_list_is_a_403_and_charges_nothing(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    await new_tenant(client)
    key = (await new_key(client, models=["sora-2-pro"]))["key"]
    for fields in ({"model": "sora-2", "seconds": "4"}, {}):  # the default model is sora-2
        response = await client.post(
            "/v1/videos", json={"prompt": "a kite", **fields}, headers=auth(key)
        )
        assert response.status_code == 403, response.text
        assert response.json() == {
            "error": {
                "message": "This API key may not use the model 'sora-2'; it may use: sora-2-pro.",
                "type": "invalid_request_error",
                "param": "model",
                "code": "model_not_allowed",
            }
        }
    async with app.state.context.db.read() as conn:
        assert (await conn.execute(select(jobs.c.id))).all() == []
        kinds = (await conn.execute(select(ledger_entries.c.kind))).scalars().all()
    assert kinds == ["top_up"]
    assert await tenant_balance_usd(app, "acme") == (10_000_000, 10_000_000)

    listed = (await client.get("/v1/models", headers=auth(key))).json()
    assert [model["id"] for model in listed["data"]] == ["sora-2-pro"]
    assert (await client.get("/v1/models/sora-2", headers=auth(key))).status_code == 404
    assert (await client.get("/v1/models/sora-2-pro", headers=auth(key))).status_code == 200
    allowed = await client.post(
        "/v1/videos", json={"prompt": "a kite", "model": "sora-2-pro"}, headers=auth(key)
    )
    assert allowed.status_code == 200, allowed.text
    every = (await new_key(client))["key"]
    listed = (await client.get("/v1/models", headers=auth(every))).json()
    assert [model["id"] for model in listed["data"]] == ["sora-2", "sora-2-pro"]
