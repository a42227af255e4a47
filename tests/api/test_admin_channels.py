"""`/admin/channels` on SQLite and PostgreSQL: declare, change, switch and test channels at
runtime; keys go in whole and come out as hints; what a channel serves is what accept allows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, KeyMaker, admin, make_settings
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from vidrelay.settings import Settings


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(
        tmp_path / "data", database_url, admin_token=ADMIN_TOKEN, channel_refresh_s=0.05
    )


@pytest.fixture
def upstream() -> Iterator[FakeOpenAIUpstream]:
    fake = FakeOpenAIUpstream(keys={"sk-up-good-0001"})
    with fake.serve():
        yield fake


def vendor(base_url: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "name": "vendor-a",
        "protocol": "openai",
        "base_url": base_url,
        "keys": ["sk-up-good-0001"],
        "route_class": "official",
        "models": ["sora-2"],
        "model_map": {"sora-2": "sora-2-2025-12-08"},
        "priority": 10,
        "weight": 2,
        "max_concurrency": 5,
        "cost_per_second_usd": "0.05",
    }
    body.update(overrides)
    return body


async def test_a_channel_is_declared_listed_and_shows_keys_only_as_hints(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    created = await admin(client, "POST", "/admin/channels", json=vendor(upstream.url))
    assert created["name"] == "vendor-a" and created["status"] == "enabled"
    assert created["keys"] == ["sk-up…0001"]
    assert created["model_map"] == {"sora-2": "sora-2-2025-12-08"}
    assert created["cost_per_second_usd"] == "0.05"
    listed = await admin(client, "GET", "/admin/channels")
    assert [c["name"] for c in listed["data"]] == ["vendor-a"]
    assert "sk-up-good-0001" not in str(listed)
    await admin(client, "POST", "/admin/channels", expect=409, json=vendor(upstream.url))


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"base_url": "not a url"}, "base_url"),
        ({"keys": []}, "keys"),
        ({"models": ["sora-9"], "model_map": {}}, "models"),
        ({"route_class": None}, "route_class"),
        ({"model_map": {"sora-2-pro": "x"}}, "model_map"),
    ],
)
async def test_an_unworkable_channel_is_a_400_naming_the_field(
    client: httpx.AsyncClient, overrides: dict[str, Any], param: str
) -> None:
    request = {**vendor("http://x.test"), **overrides}
    body = await admin(client, "POST", "/admin/channels", expect=400, json=request)
    assert body["error"]["param"] == param


async def test_patch_changes_only_what_is_sent_and_disable_enable_switch_routing(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream, make_key: KeyMaker
) -> None:
    await admin(client, "POST", "/admin/channels", json=vendor(upstream.url))
    patched = await admin(
        client, "PATCH", "/admin/channels/vendor-a", json={"priority": 3, "models": ["sora-2"]}
    )
    assert patched["priority"] == 3 and patched["weight"] == 2
    key = await make_key()
    auth = {"Authorization": f"Bearer {key}"}
    disabled = await admin(client, "POST", "/admin/channels/vendor-a/disable")
    assert disabled["status"] == "disabled"
    refused = await client.post("/v1/videos", headers=auth, json={"prompt": "a kite"})
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "model_not_served"
    await admin(client, "POST", "/admin/channels/vendor-a/enable")
    accepted = await client.post("/v1/videos", headers=auth, json={"prompt": "a kite"})
    assert accepted.status_code == 200, accepted.text


async def test_a_channel_test_reports_reachability_and_each_key(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream
) -> None:
    await admin(
        client,
        "POST",
        "/admin/channels",
        json=vendor(upstream.url, keys=["sk-up-good-0001", "sk-up-bad-0002"]),
    )
    result = await admin(client, "POST", "/admin/channels/vendor-a/test")
    assert result["reachable"] is True and result["healthy"] is False
    assert [(k["key"], k["ok"]) for k in result["keys"]] == [
        ("sk-up…0001", True),
        ("sk-up…0002", False),
    ]
    assert upstream.requests_to("/v1/videos", "POST") == []  # nothing billable
    await admin(client, "POST", "/admin/channels", json=vendor("http://127.0.0.1:9", name="gone"))
    unreachable = await admin(client, "POST", "/admin/channels/gone/test")
    assert unreachable["reachable"] is False and unreachable["healthy"] is False
    assert "127.0.0.1" not in unreachable["detail"]


async def test_a_channel_is_deleted_only_when_no_job_runs_on_it(
    client: httpx.AsyncClient, upstream: FakeOpenAIUpstream, make_key: KeyMaker
) -> None:
    upstream.job_duration_s = 30
    await admin(client, "POST", "/admin/channels", json=vendor(upstream.url))
    key = await make_key()
    created = await client.post(
        "/v1/videos", headers={"Authorization": f"Bearer {key}"}, json={"prompt": "a kite"}
    )
    assert created.status_code == 200
    for _ in range(200):
        if upstream.requests_to("/v1/videos", "POST"):
            break
        await admin(client, "GET", "/admin/channels")
    busy = await admin(client, "DELETE", "/admin/channels/vendor-a", expect=409)
    assert busy["error"]["code"] == "channel_busy"
    await admin(client, "DELETE", "/admin/channels/nothing", expect=404)
