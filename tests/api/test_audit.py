"""`GET /admin/audit` on SQLite and PostgreSQL: every operator action (and a tenant's own) leaves
one row naming who did it and from where, a refused action leaves none, and no row ever holds a
key or a secret."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import ADMIN_TOKEN, admin, make_settings
from vidrelay.api.context import AppContext
from vidrelay.settings import Settings
from vidrelay.store.tables import audit_log
from vidrelay.upstreams.messages import key_hint

UPSTREAM_KEY = "sk-upstream-very-secret-key-0001"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "data", database_url, admin_token=ADMIN_TOKEN, engine=False)


async def audit(client: httpx.AsyncClient, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = await admin(client, "GET", "/admin/audit", params=params)
    return body


async def test_each_admin_action_is_one_audit_row_naming_the_client_address(
    client: httpx.AsyncClient,
) -> None:
    await admin(client, "POST", "/admin/tenants", json={"name": "acme", "balance_usd": "3"})
    await admin(client, "POST", "/admin/tenants/acme/topups", json={"amount_usd": "2"})
    await admin(
        client, "POST", "/admin/tenants/acme/adjustments", json={"amount_usd": "-1", "note": "oops"}
    )
    await admin(client, "PUT", "/admin/groups/vip", json={"multiplier": "0.8"})
    await admin(client, "PATCH", "/admin/tenants/acme", json={"group": "vip", "rpm": 9})
    await admin(client, "PUT", "/admin/prices", json={"model": "sora-2", "per_second_usd": "0.1"})
    key = await admin(client, "POST", "/admin/tenants/acme/keys", expect=201, json={})
    await admin(client, "DELETE", f"/admin/keys/{key['id']}")
    channel = {"name": "loc", "protocol": "local", "models": ["sora-2"], "keys": [UPSTREAM_KEY]}
    await admin(client, "POST", "/admin/channels", json=channel)
    await admin(client, "PATCH", "/admin/channels/loc", json={"priority": 2})
    await admin(client, "POST", "/admin/channels/loc/disable")
    await admin(client, "POST", "/admin/channels/loc/enable")
    await admin(client, "POST", "/admin/channels/loc/test")
    await admin(client, "DELETE", "/admin/channels/loc")

    rows = (await audit(client))["data"]
    assert [(row["action"], row["target"]) for row in reversed(rows)] == [
        ("tenant.create", "acme"),
        ("tenant.top_up", "acme"),
        ("tenant.adjust", "acme"),
        ("group.set", "vip"),
        ("tenant.set", "acme"),
        ("price.set", "sora-2"),
        ("key.create", "acme"),
        ("key.revoke", "acme"),
        ("channel.declare", "loc"),
        ("channel.change", "loc"),
        ("channel.disable", "loc"),
        ("channel.enable", "loc"),
        ("channel.test", "loc"),
        ("channel.delete", "loc"),
    ]
    assert {json.dumps(row["actor"]) for row in rows} == {
        json.dumps({"kind": "admin-api", "address": "127.0.0.1", "tenant_id": None})
    }
    by_action = {row["action"]: row for row in rows}
    assert by_action["tenant.adjust"]["details"] == {"amount_usd": "-1.000000", "note": "oops"}
    assert by_action["channel.change"]["details"] == {"priority": 2}
    assert by_action["key.revoke"]["details"] == {"id": key["id"]}
    assert all(row["created_at"] > 0 for row in rows)


async def test_a_refused_action_leaves_no_audit_row(client: httpx.AsyncClient) -> None:
    await admin(client, "POST", "/admin/tenants", json={"name": "acme"})
    before = (await audit(client))["data"]
    await admin(client, "POST", "/admin/tenants/ghost/topups", 404, json={"amount_usd": "1"})
    below_zero = {"amount_usd": "-1", "note": "x"}
    await admin(client, "POST", "/admin/tenants/acme/adjustments", 400, json=below_zero)
    await admin(client, "POST", "/admin/tenants", 409, json={"name": "acme"})
    await admin(client, "POST", "/admin/channels/ghost/enable", 404)
    await admin(client, "POST", "/admin/deliveries/wd_nope/replay", 404)
    await admin(client, "PATCH", "/admin/tenants/acme", 400, json={"group": "no-such-group"})
    assert (await audit(client))["data"] == before


async def test_no_audit_row_holds_a_key_or_a_secret(client: httpx.AsyncClient, app: Any) -> None:
    await admin(client, "POST", "/admin/tenants", json={"name": "acme"})
    issued = await admin(client, "POST", "/admin/tenants/acme/keys", expect=201, json={})
    key = issued["key"]
    tenant = {"Authorization": f"Bearer {key}"}
    hook = "https://hooks.example.com/in?token=tok-secret-42"
    added = await client.post("/v1/webhooks", headers=tenant, json={"url": hook})
    assert added.status_code == 200, added.text
    rotated = await client.post("/v1/webhooks/secret/rotate", headers=tenant)
    assert rotated.status_code == 200, rotated.text
    channel = {"name": "loc", "protocol": "local", "models": ["sora-2"], "keys": [UPSTREAM_KEY]}
    await admin(client, "POST", "/admin/channels", json=channel)
    await admin(client, "PATCH", "/admin/channels/loc", json={"keys": [UPSTREAM_KEY + "-2"]})

    context: AppContext = app.state.context
    async with context.db.read() as conn:
        stored = [dict(row._mapping) for row in await conn.execute(select(audit_log))]
    text = json.dumps(stored)
    secrets = [key, issued["hint"], added.json()["secret"], rotated.json()["secret"]]
    for secret in [*secrets, UPSTREAM_KEY, key_hint(UPSTREAM_KEY), "tok-secret-42"]:
        assert secret not in text, secret
    tenant_rows = [row for row in stored if row["actor_kind"] == "tenant"]
    assert [row["action"] for row in tenant_rows] == [
        "webhook_endpoint.add",
        "webhook_secret.rotate",
    ]
    assert {row["actor_address"] for row in tenant_rows} == {"127.0.0.1"}
    assert all(row["actor_tenant_id"].startswith("ten_") for row in tenant_rows)
    assert json.loads(tenant_rows[0]["details"])["url"] == "https://hooks.example.com/in"
    changed = [row for row in stored if row["action"] == "channel.change"]
    assert json.loads(changed[0]["details"]) == {"keys": 1}  # a key swapped: said, not shown


async def test_the_audit_log_pages_newest_first_and_filters_by_action_and_target(
    client: httpx.AsyncClient,
) -> None:
    for name in ("g1", "g2", "g3", "g4", "g5"):
        await admin(client, "PUT", f"/admin/groups/{name}", json={"multiplier": "1"})
    await admin(client, "POST", "/admin/tenants", json={"name": "g2"})

    first = await audit(client, limit=2, action="group.set")
    assert [row["target"] for row in first["data"]] == ["g5", "g4"] and first["has_more"]
    second = await audit(client, limit=2, action="group.set", after=first["last_id"])
    assert [row["target"] for row in second["data"]] == ["g3", "g2"] and second["has_more"]
    last = await audit(client, limit=2, action="group.set", after=second["last_id"])
    assert [row["target"] for row in last["data"]] == ["g1"] and not last["has_more"]

    by_target = await audit(client, target="g2")
    assert [row["action"] for row in by_target["data"]] == ["tenant.create", "group.set"]
    assert (await audit(client, action="nothing"))["data"] == []
    for bad in ({"limit": 0}, {"after": "x"}, {"limit": 501}):
        body = await admin(client, "GET", "/admin/audit", 400, params=bad)
        assert body["error"]["param"] in {"limit", "after"}
